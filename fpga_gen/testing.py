"""Checks for users' own test suites: is the generated hardware still the model?

    from fpga_gen.testing import assert_matches_model

    @pytest.mark.fpga_gen_csim                      # skipped where g++ is missing
    def test_model_in_csim(fpga_gen_project):
        project = fpga_gen_project("model.h5", reuse_factor=4)     # converted, written, built once a session
        assert_matches_model(project, x_test, tolerance="lsb:1")

The fixture and the marker come from the pytest plugin fpga_gen.pytest_plugin (installed with the
package through the ``pytest11`` entry point; nothing to add to conftest.py).
"""

from __future__ import annotations

import shutil

from .verify import Tolerance, VerifyResult, verify

__all__ = ["assert_matches_model", "csim_available", "CSIM_MISSING_REASON"]

CSIM_MISSING_REASON = "g++ is not installed: fpga-gen C simulation needs it (apt-get install g++)"


def csim_available() -> bool:
    return shutil.which("g++") is not None


def assert_matches_model(project, x, tolerance="exact", backend: str = "csim", reference=None,
                         labels=None) -> VerifyResult:
    """Fail with a readable message unless ``project`` run on ``backend`` matches ``reference``.

    ``reference``: None (the project's Keras model, else the bit-exact emulator), ``"emu"``, a Keras
    model, or expected output arrays.  ``tolerance``: ``"exact"``, ``"lsb:N"`` or ``"argmax:F"``.
    The message names the output, the worst sample, expected vs got and the difference in LSBs of
    the output type.  Returns the :class:`~fpga_gen.verify.VerifyResult` when it passes.
    """
    __tracebackhide__ = True
    tol = Tolerance.parse(tolerance)
    result = verify(project, x, labels=labels, backend=backend, tolerance=tol, reference=reference,
                    show_progress=False)
    if not result.passed:
        lines = [f"{getattr(project, 'name', 'project')} on {backend} does not match the {result.reference} "
                 f"reference within tolerance {tol}" + (f" ({result.note})" if result.note else "") + ":"]
        lines += [f"  {o.message}" for o in result.failures]
        raise AssertionError("\n".join(lines))
    return result

"""pytest plugin (entry point ``pytest11: fpga_gen``): the ``fpga_gen_project`` fixture and the
``fpga_gen_csim`` marker.  See fpga_gen/testing.py for the assertion and an example."""

from __future__ import annotations

import json

import pytest

from . import csim
from .api import convert
from .testing import CSIM_MISSING_REASON, csim_available


def pytest_configure(config):
    config.addinivalue_line("markers", "fpga_gen_csim: needs g++ for fpga-gen C simulation; skipped where it "
                                       "is missing")


def pytest_runtest_setup(item):
    if item.get_closest_marker("fpga_gen_csim") is not None and not csim_available():
        pytest.skip(CSIM_MISSING_REASON)


class _ProjectCache:
    """Session cache: one converted, written and (when g++ exists) C-simulation-built project per
    model/config/overrides."""

    def __init__(self, root_factory):
        self._root_factory = root_factory
        self._projects = {}
        self._root = None

    def __call__(self, model, config=None, build: bool = True, **overrides):
        key = (_model_key(model), _config_key(config), json.dumps(overrides, sort_keys=True, default=str))
        hit = self._projects.get(key)
        if hit is not None:
            return hit[0]
        project = convert(model, config=config, **overrides)
        if self._root is None:
            self._root = self._root_factory()
        project.write(self._root / f"{project.name}-{project.fingerprint()[:12]}", force=True)
        if build and csim_available():
            csim.build(project.directory, library=True, testbench=False)
        self._projects[key] = (project, model)      # the model kept alive: its id stays unique
        return project


def _model_key(model):
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        return ("path", str(model))
    return ("object", id(model))


def _config_key(config):
    if config is None or isinstance(config, str) or hasattr(config, "__fspath__"):
        return str(config)
    if isinstance(config, dict):
        return json.dumps(config, sort_keys=True, default=str)
    return ("object", id(config))


@pytest.fixture(scope="session")
def fpga_gen_project(tmp_path_factory):
    """Factory ``fpga_gen_project(model, config=None, **overrides) -> Project``: converted, written
    and C-simulation-built once per model/config/overrides for the whole test session."""
    return _ProjectCache(lambda: tmp_path_factory.mktemp("fpga_gen_projects"))

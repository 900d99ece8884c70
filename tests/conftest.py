import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# FPGA_GEN_RECORD_TORCH=DIR: every graph and batch the tests run on the PyTorch back end (TorchOps, the ``gpu``
# back end) is pickled into DIR, for benchmarks/check_gpu.py to replay on a CUDA machine that has no TensorFlow.
_RECORD = os.environ.get("FPGA_GEN_RECORD_TORCH")
if _RECORD:
    import itertools
    import pickle

    from fpga_gen.emulate import interpreter
    from fpga_gen.ir.fixed import NP

    _predict = interpreter.Emulator.predict
    _count = itertools.count()

    def _recording_predict(self, x, trace=False):
        if self.xp is not NP:
            xs = [a[:4096] for a in x] if isinstance(x, (list, tuple)) else x[:4096]
            test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
            os.makedirs(_RECORD, exist_ok=True)
            with open(os.path.join(_RECORD, f"{os.getpid()}_{next(_count):06d}.pkl"), "wb") as f:
                pickle.dump({"test": test, "graph": self.graph, "x": xs}, f)
        return _predict(self, x, trace=trace)

    interpreter.Emulator.predict = _recording_predict

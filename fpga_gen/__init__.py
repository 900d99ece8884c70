"""fpga-gen: quantized Keras models to bit-exact HLS projects for Zynq boards."""

__version__ = "0.1.0"

__all__ = ["convert", "load_project", "Project", "__version__"]


def __getattr__(name):
    # the API pulls in TensorFlow only when a model is converted; keep `import fpga_gen` light
    if name in ("convert", "load_project", "Project"):
        from . import api
        return getattr(api, name)
    raise AttributeError(name)

"""Graph -> Vitis HLS project: C++ and Tcl rendered from templates/hls/."""
from .layers import HlsWriteError
from .writer import write_project

__all__ = ["write_project", "HlsWriteError"]

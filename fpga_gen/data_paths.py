"""Where the shipped data lives: templates/ and boards/ (repository root, or inside the wheel)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["templates_dir", "boards_dir", "hls4ml_vivado_dir"]

_REPO = Path(__file__).resolve().parent.parent


def _data_dir(package: str, repo_name: str) -> Path:
    local = _REPO / repo_name
    if local.is_dir() and (_REPO / "pyproject.toml").is_file():
        return local
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    raise FileNotFoundError(f"cannot find the {repo_name}/ folder of fpga-gen; reinstall the package")


def templates_dir() -> Path:
    return _data_dir("fpga_gen.templates", "templates")


def boards_dir() -> Path:
    return _data_dir("fpga_gen.board_files", "boards")


def hls4ml_vivado_dir() -> Path:
    """hls4ml's templates/vivado folder (ap_types headers and the nnet_utils kernels)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("hls4ml is not installed; it provides the ap_types headers and nnet_utils kernels: "
                                "pip install 'hls4ml>=1.3,<1.4'")
    d = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado"
    if not (d / "ap_types").is_dir() or not (d / "nnet_utils").is_dir():
        raise FileNotFoundError(f"{d} lacks ap_types/ or nnet_utils/; reinstall hls4ml 1.3")
    return d

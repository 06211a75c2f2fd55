"""The three-way check tells the truth: TFLM vs TFLite agreement, float ops in a quantized model,
model/dataset shape agreement.

Rules (docs/export.md, "What the check enforces"):

- **TFLM vs TFLite (reference kernels)**, per format (exact agreement is always "ok"):
  - ``int8`` with integer I/O: up to ``INT8_TOLERANCE_LSB`` (1) is a shown, named warning
    (``tflm_tflite_int8_lsb``; seen on small MobileOne and EfficientNetV2 models, not localised yet:
    some int8 kernel rounds differently in the two
    implementations), up to ``FLOAT_OPS_TOLERANCE_LSB`` (4) when float ops run inside
    (``fallback``; float kernels differ), beyond that the export fails (exit 1, after every
    artifact is written). ``int8`` with float I/O: the dequantized outputs must be identical.
  - ``int16x8``: TFLM's int16 kernels may round differently from TFLite's reference kernels;
    differences up to ``INT16_TOLERANCE_LSB`` (4) are a shown, named warning
    (``tflm_tflite_int16_lsb``) with the figures; beyond it the export fails.
  - ``float32``: max |diff| <= 1e-5 x max(1, max |output|) (rounding of the same float arithmetic).
- **Float ops in a quantized model** (int8 / int16x8): every operator computing in float between
  the integer input and output (e.g. LayerNormalization's DEQUANTIZE -> NEG -> QUANTIZE) is listed
  with its Keras layer on the terminal and in the report (``float_ops``). With
  ``quantization.fallback: false`` such a model is refused (exit 2).
- **Shapes**: the model's output shape and the test labels' shape must describe the same task
  (one label per frame for ``[C]`` outputs, one per time step for ``[T, C]`` outputs), checked before
  conversion; a mismatch is exit 2 naming both shapes.

No TensorFlow here (the flatbuffer is read with the ``tflite`` package).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hkdeploy.errors import UserError

INT16_TOLERANCE_LSB = 4
INT8_TOLERANCE_LSB = 1
FLOAT_OPS_TOLERANCE_LSB = 4
FLOAT_RTOL = 1e-5


@dataclass(frozen=True)
class FloatOp:
    """One operator that computes in float inside a quantized model."""

    index: int
    op: str
    tensor: str
    layer: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def float_ops(model: bytes, fmt: str, layer_names: dict[str, str] | None = None) -> list[FloatOp]:
    """Operators of an integer model whose output is float, other than the I/O conversion at the edges.

    Args:
        model: the .tflite bytes.
        fmt: the conversion format; float formats have no "float op inside" by definition.
        layer_names: Keras layer name -> class name, to name the layer behind each op.
    """
    if fmt not in ("int8", "int16x8"):
        return []
    import tflite

    from hkdeploy.export.rewrites import _layer_for_tensor

    m = tflite.Model.GetRootAsModel(model, 0)
    g = m.Subgraphs(0)
    graph_outputs = {g.Outputs(i) for i in range(g.OutputsLength())}
    graph_inputs = {g.Inputs(i) for i in range(g.InputsLength())}
    names = list(layer_names or {})
    found: list[FloatOp] = []
    for oi in range(g.OperatorsLength()):
        operator = g.Operators(oi)
        oc = m.OperatorCodes(operator.OpcodeIndex())
        op = str(tflite.opcode2name(max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))))
        outs = [operator.Outputs(k) for k in range(operator.OutputsLength())]
        ins = [operator.Inputs(k) for k in range(operator.InputsLength()) if operator.Inputs(k) >= 0]
        float_out = [t for t in outs if t >= 0 and g.Tensors(t).Type() == 0]  # 0 = FLOAT32
        if not float_out:
            continue
        if op == "DEQUANTIZE" and all(t in graph_outputs for t in float_out):
            continue  # io_type float32: the output conversion
        if all(t in graph_inputs for t in ins) and op == "QUANTIZE":
            continue
        tensor = (g.Tensors(float_out[0]).Name() or b"").decode(errors="replace")
        hit = _layer_for_tensor(tensor, names) if names else None
        layer = f"{hit} ({(layer_names or {})[hit]})" if hit else None
        found.append(FloatOp(oi, op, tensor, layer))
    return found


def float_ops_summary(ops: list[FloatOp]) -> str:
    """``3 float ops: NEG (layer_norm (LayerNormalization)), DEQUANTIZE x2 (...)``."""
    groups: dict[tuple[str, str | None], int] = {}
    for f in ops:
        groups[(f.op, f.layer)] = groups.get((f.op, f.layer), 0) + 1
    parts = [
        f"{op}{f' x{n}' if n > 1 else ''}{f' ({layer})' if layer else ''}"
        for (op, layer), n in groups.items()
    ]
    return (
        f"{len(ops)} float op(s) inside the quantized model: "
        + ", ".join(parts[:8])
        + (f" (+{len(parts) - 8} more)" if len(parts) > 8 else "")
    )


def refuse_float_ops(ops: list[FloatOp], fallback: bool) -> None:
    """Raise when a quantized model computes in float and ``fallback`` is false.

    Raises:
        UserError: float ops inside and ``quantization.fallback`` is false.
    """
    if ops and not fallback:
        raise UserError(
            float_ops_summary(ops) + "; quantization.fallback is false",
            hint="set quantization.fallback: true to accept float kernels on the board (slower, larger "
            "arena), or replace those layers (e.g. LayerNormalization -> BatchNormalization)",
        )


def agreement(
    fmt: str, pair: dict[str, Any], reference_peak: float, float_inside: bool = False
) -> dict[str, Any]:
    """The TFLM vs TFLite-reference verdict for ``fmt`` from the ``tflite_int8__tflm`` pair metrics.

    ``float_inside``: the quantized model runs float ops (a looser int8 tolerance, see the module).

    Returns a dict with ``status`` (ok / warning / fail), ``name``, ``message`` and the figures.
    """
    exact, lsb, max_abs = pair.get("exact_match"), pair.get("max_lsb"), float(pair.get("max_abs_err", 0.0))
    out: dict[str, Any] = {"format": fmt, "exact_match": exact, "max_lsb": lsb, "max_abs_err": max_abs}
    if lsb is not None:
        what = f"TFLM equals TFLite (reference kernels) on {exact:.1%} of frames, max {lsb} LSB apart"
        if lsb == 0:
            return {**out, "status": "ok", "name": "tflm_tflite_exact", "message": what}
        if fmt == "int16x8" and lsb <= INT16_TOLERANCE_LSB:
            return {
                **out,
                "status": "warning",
                "name": "tflm_tflite_int16_lsb",
                "message": f"{what} (int16x8 tolerance {INT16_TOLERANCE_LSB} LSB: TFLM's int16 kernels round "
                "differently from TFLite's reference kernels)",
            }
        int8_limit = FLOAT_OPS_TOLERANCE_LSB if float_inside else INT8_TOLERANCE_LSB
        if fmt == "int8" and lsb <= int8_limit:
            why = (
                "float ops inside: float kernels differ" if float_inside else "int8 kernels round differently"
            )
            return {
                **out,
                "status": "warning",
                "name": "tflm_tflite_int8_lsb",
                "message": f"{what} (int8 tolerance {int8_limit} LSB: {why})",
            }
        limit = (
            f"{INT16_TOLERANCE_LSB} LSB"
            if fmt == "int16x8"
            else f"{int8_limit} LSB"
            if fmt == "int8"
            else "exact"
        )
        return {
            **out,
            "status": "fail",
            "name": "tflm_tflite_mismatch",
            "message": f"{what}; required: {limit}",
        }
    tol = FLOAT_RTOL * max(1.0, reference_peak)
    what = f"TFLM vs TFLite (reference kernels): max |diff| {max_abs:.3g}"
    if max_abs == 0.0:
        return {**out, "status": "ok", "name": "tflm_tflite_exact", "message": what}
    if fmt == "int16x8":
        return {**out, "status": "warning", "name": "tflm_tflite_int16_lsb", "message": what + " (int16x8)"}
    if fmt in ("float32", "float16") and max_abs <= tol:
        return {
            **out,
            "status": "ok",
            "name": "tflm_tflite_float_rounding",
            "message": f"{what} (<= {tol:.3g})",
        }
    required = "0 (same integer outputs)" if fmt == "int8" else f"<= {tol:.3g}"
    return {
        **out,
        "status": "fail",
        "name": "tflm_tflite_mismatch",
        "message": f"{what}; required {required}",
    }


def merge_verdict(verdict: dict[str, Any], agree: dict[str, Any]) -> dict[str, Any]:
    """The export verdict with the agreement rule folded in (a failed agreement fails the export)."""
    out = {**verdict, "agreement": agree}
    if agree["status"] == "fail":
        out["passed"] = False
        out["message"] = f"{agree['message']} — {verdict['message']}"
    elif agree["status"] == "warning":
        out["message"] = f"{verdict['message']}; warning {agree['name']}: {agree['message']}"
    return out


# --- shapes -------------------------------------------------------------------------------------------


def check_label_shapes(model_output: tuple[Any, ...], y_shape: tuple[int, ...], num_classes: int) -> str:
    """The kind of targets the data holds for this model's output: ``frame`` or ``timestep``.

    Args:
        model_output: the model's output shape without the batch axis, e.g. ``(4,)`` or ``(256, 4)``.
        y_shape: the test labels' shape with the frame axis, e.g. ``(300,)`` or ``(300, 256)``.
        num_classes: the config's ``num_classes``.

    Raises:
        UserError: the two describe different tasks (before any conversion), naming both shapes.
    """
    out = tuple(int(d) if d is not None else -1 for d in model_output)
    labels = tuple(y_shape[1:])
    per_frame = len(out) == 1 or (len(out) == 2 and out[0] == 1)
    if per_frame and not labels:
        return "frame"
    if len(out) == 2 and labels and labels[0] == out[0]:
        return "timestep"
    if per_frame:
        problem = f"one class score vector per frame {out}, the test labels are per time step {y_shape}"
        hint = "give one label per frame (y [N]) or a model with per-time-step output [T, C]"
    elif not labels:
        problem = f"outputs per time step {out}, the test labels are one per frame {y_shape}"
        hint = "segmentation data needs labels per time step (y [N, T] or one-hot [N, T, C])"
    else:
        problem = f"output {out} and test labels {y_shape} do not line up"
        hint = "the label time axis must match the model's output time axis"
    raise UserError(f"model and dataset disagree: the model gives {problem}", hint=hint)

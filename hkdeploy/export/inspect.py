"""Read a .tflite flatbuffer without TensorFlow: ops, tensors, I/O quantization, parameters, MACs.

Uses the ``tflite`` package (the TFLite schema compiled for Python); imports in ~0.1 s.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hkdeploy.errors import UserError
from hkdeploy.export.tflm_ops import TFLM_RESOLVER_METHODS

# TFLite TensorType numbers -> (name, numpy dtype, bytes per element)
TENSOR_TYPES: dict[int, tuple[str, str, int]] = {
    0: ("float32", "float32", 4),
    1: ("float16", "float16", 2),
    2: ("int32", "int32", 4),
    3: ("uint8", "uint8", 1),
    4: ("int64", "int64", 8),
    6: ("bool", "bool", 1),
    7: ("int16", "int16", 2),
    9: ("int8", "int8", 1),
    10: ("float64", "float64", 8),
    15: ("uint32", "uint32", 4),
    16: ("uint16", "uint16", 2),
    17: ("int4", "int8", 1),
}


_WEIGHTED_ELEMENTWISE = frozenset({"ADD", "SUB", "MUL", "PRELU", "SVDF", "UNIDIRECTIONAL_SEQUENCE_LSTM"})


@dataclass(frozen=True)
class TensorInfo:
    """One input or output tensor, as the firmware sees it."""

    name: str
    index: int
    shape: list[int]
    dtype: str
    type_code: int
    scale: float
    zero_point: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LayerInfo:
    """One operator of the graph."""

    index: int
    op: str
    output: str
    output_shape: list[int]
    macs: int
    params: int


@dataclass(frozen=True)
class ModelInfo:
    """What the exported model is."""

    size: int
    sha256: str
    ops: dict[str, int]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    num_tensors: int
    params: int
    macs: int
    layers: list[LayerInfo] = field(default_factory=list)
    unsupported_ops: list[str] = field(default_factory=list)
    tensor_types: dict[str, int] = field(default_factory=dict)

    @property
    def input(self) -> TensorInfo:
        return self.inputs[0]

    @property
    def output(self) -> TensorInfo:
        return self.outputs[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _op_name(code: int, custom: bytes | None) -> str:
    import tflite

    if code == 32:  # CUSTOM
        return f"CUSTOM:{(custom or b'?').decode(errors='replace')}"
    return str(tflite.opcode2name(code))


def _tensor_info(graph: Any, index: int) -> TensorInfo:
    t = graph.Tensors(index)
    shape = [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []
    type_name, _, width = TENSOR_TYPES.get(t.Type(), (f"type{t.Type()}", "uint8", 1))
    q = t.Quantization()
    scale, zp = 0.0, 0
    if q is not None and q.ScaleLength() == 1:
        scale = float(q.ScaleAsNumpy()[0])
        zp = int(q.ZeroPointAsNumpy()[0]) if q.ZeroPointLength() else 0
    return TensorInfo(
        name=(t.Name() or b"").decode(errors="replace"),
        index=index,
        shape=shape,
        dtype=type_name,
        type_code=int(t.Type()),
        scale=scale,
        zero_point=zp,
        bytes=int(np.prod(shape)) * width if shape else width,
    )


def _shape(graph: Any, index: int) -> list[int]:
    t = graph.Tensors(index)
    return [int(d) for d in t.ShapeAsNumpy()] if t.ShapeLength() else []


def _macs(op: str, graph: Any, operator: Any) -> int:
    """Multiply-accumulates of one operator (0 for ops that do none worth counting)."""
    ins = [operator.Inputs(i) for i in range(operator.InputsLength())]
    out = operator.Outputs(0) if operator.OutputsLength() else -1
    if out < 0 or not ins or ins[1 if len(ins) > 1 else 0] < 0:
        return 0
    out_elems = int(np.prod(_shape(graph, out))) if _shape(graph, out) else 0
    if op == "CONV_2D" and len(ins) > 1:
        w = _shape(graph, ins[1])  # [out_c, kh, kw, in_c]
        return out_elems * int(np.prod(w[1:])) if len(w) == 4 else 0
    if op == "DEPTHWISE_CONV_2D" and len(ins) > 1:
        w = _shape(graph, ins[1])  # [1, kh, kw, out_c]
        return out_elems * int(w[1] * w[2]) if len(w) == 4 else 0
    if op == "TRANSPOSE_CONV" and len(ins) > 2:
        w = _shape(graph, ins[1])
        in_elems = int(np.prod(_shape(graph, ins[2])))
        return in_elems * int(np.prod(w[:3])) if len(w) == 4 else 0
    if op in ("FULLY_CONNECTED", "BATCH_MATMUL") and len(ins) > 1:
        w = _shape(graph, ins[1])
        return out_elems * int(w[-1]) if w else 0
    return 0


def inspect_model(model: bytes) -> ModelInfo:
    """Describe a .tflite model.

    Raises:
        UserError: the bytes are not a TFLite flatbuffer, or it has more than one subgraph.
    """
    import tflite

    if len(model) < 8 or model[4:8] != b"TFL3":
        raise UserError(
            "this is not a TFLite model (no 'TFL3' identifier)",
            hint="pass the .tflite file hkdeploy export wrote",
        )
    try:
        m = tflite.Model.GetRootAsModel(model, 0)
        graph = m.Subgraphs(0)
        n_ops = graph.OperatorsLength()
    except Exception as exc:  # a corrupt flatbuffer raises anything from struct errors to IndexError
        raise UserError(
            f"cannot parse the TFLite model: {exc}", hint="export again; the .tflite file may be truncated"
        ) from exc

    codes = []
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        codes.append(_op_name(code, oc.CustomCode()))

    const_tensors: set[int] = set()
    params = 0
    for ti in range(graph.TensorsLength()):
        t = graph.Tensors(ti)
        buf = m.Buffers(t.Buffer()) if t.Buffer() < m.BuffersLength() else None
        has_data = buf is not None and (buf.DataLength() > 0 or (hasattr(buf, "Size") and buf.Size() > 0))
        if has_data and t.ShapeLength():
            const_tensors.add(ti)

    counter: Counter[str] = Counter()
    layers = []
    total_macs = 0
    for oi in range(n_ops):
        operator = graph.Operators(oi)
        op = codes[operator.OpcodeIndex()]
        counter[op] += 1
        macs = _macs(op, graph, operator)
        total_macs += macs
        lp = 0
        if macs or op in _WEIGHTED_ELEMENTWISE:  # shape/axis constants of RESHAPE, MEAN... are no parameters
            for k in range(operator.InputsLength()):
                ti = operator.Inputs(k)
                if ti in const_tensors:
                    lp += int(np.prod(_shape(graph, ti)))
        params += lp
        out = operator.Outputs(0) if operator.OutputsLength() else -1
        layers.append(
            LayerInfo(
                index=oi,
                op=op,
                output=(graph.Tensors(out).Name() or b"").decode(errors="replace") if out >= 0 else "",
                output_shape=_shape(graph, out) if out >= 0 else [],
                macs=macs,
                params=lp,
            )
        )
    ops = dict(sorted(counter.items()))
    unsupported = sorted(op for op in ops if op not in TFLM_RESOLVER_METHODS)
    types: Counter[str] = Counter(
        TENSOR_TYPES.get(graph.Tensors(i).Type(), (f"type{graph.Tensors(i).Type()}",))[0]
        for i in range(graph.TensorsLength())
    )
    return ModelInfo(
        size=len(model),
        sha256=hashlib.sha256(model).hexdigest(),
        ops=ops,
        inputs=[_tensor_info(graph, graph.Inputs(i)) for i in range(graph.InputsLength())],
        outputs=[_tensor_info(graph, graph.Outputs(i)) for i in range(graph.OutputsLength())],
        num_tensors=graph.TensorsLength(),
        params=params,
        macs=total_macs,
        layers=layers,
        unsupported_ops=unsupported,
        tensor_types=dict(sorted(types.items())),
    )


def check_tflm_ops(info: ModelInfo) -> None:
    """Raise a UserError listing the ops (and tensor types) TFLM lacks, if any."""
    if info.tensor_types.get("float16"):
        raise UserError(
            f"TFLM cannot run this model: it has {info.tensor_types['float16']} float16 tensors "
            "(TFLM's DEQUANTIZE has no float16 input)",
            hint="use quantization.format int8 (or float32) for a TFLM target",
        )
    if info.unsupported_ops:
        raise UserError(
            f"TFLM has no kernel for {len(info.unsupported_ops)} op(s) of this model: "
            f"{', '.join(info.unsupported_ops)}",
            hint="replace those layers with TFLM-supported ones (see hkdeploy/export/tflm_ops.py), "
            "or set quantization.fallback only if float kernels exist for them",
        )

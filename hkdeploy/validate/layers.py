"""Per-layer views of the device: where its time goes (PROFILE) and where it first departs from the
golden (TENSOR), both joined with the export's layer list (op names, MACs).

- ``profile_section``: one profiled Invoke() on the device (the engine times every operator with the
  platform's counter), beside the export's MACs per layer: cycles, share of the Invoke(), MACs per
  cycle. Engines without a per-operator timer (the virtual EVB's tflite-micro runtime) say so.
- ``layer_diff``: for a frame whose output differs from the TFLM golden, the device's output of each
  operator in turn, compared with the host interpreter's (tflite-micro reference kernels, every
  tensor preserved): the first operator whose output differs is named with its values and max LSB.

No TensorFlow. The host interpreter is imported only when a diff is needed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from hkdeploy.export.inspect import TENSOR_TYPES
from hkdeploy.link import protocol as p
from hkdeploy.link.client import DeviceClient, DeviceStatusError, Profile
from hkdeploy.platforms.base import Counter

log = logging.getLogger("hkdeploy.validate")

_UNSUPPORTED = (
    "the device's engine has no per-operator timer (the virtual EVB runs the tflite-micro Python runtime): "
    "profile on --board qemu_m4 / qemu_m55 or a board"
)


def op_name(builtin_code: int) -> str:
    """TFLite's name of a BuiltinOperator code (``BUILTIN_<n>`` if unknown)."""
    try:
        import tflite

        return str(tflite.opcode2name(builtin_code))
    except Exception:  # an unknown code from a newer schema
        return f"BUILTIN_{builtin_code}"


def tensor_label(name: str) -> str:
    """A readable label of a converter tensor name: its first fused name, the last three path parts."""
    first = name.split(";")[0]
    parts = first.split("/")
    return "/".join(parts[-3:]) if len(parts) > 3 else first


def take_profile(dev: DeviceClient, frame: bytes) -> Profile | str:
    """One profiled Invoke() on ``frame``, or why there is none."""
    if not dev.features() & p.Feature.PROFILE:
        return _UNSUPPORTED
    dev.set_input(frame)
    try:
        return dev.profile()
    except DeviceStatusError as exc:
        return str(exc)


def profile_section(
    prof: Profile | str | None, layers: list[dict[str, Any]], counter: Counter
) -> dict[str, Any]:
    """summary.json's ``profile``: per-operator counts of one Invoke(), beside the export's MACs."""
    if prof is None:
        return {"available": False, "reason": "not taken (no frame was run)"}
    if isinstance(prof, str):
        return {"available": False, "reason": prof}
    total = prof.cycles_total
    k = counter.per_count
    rows, problems = [], []
    if len(layers) != prof.op_count:
        problems.append(f"the device runs {prof.op_count} operators, the export has {len(layers)}")
    for o in prof.ops:
        layer = layers[o.index] if o.index < len(layers) else {}
        name = op_name(o.builtin_code)
        if layer and layer.get("op") != name and not problems:
            problems.append(f"operator {o.index} is {name} on the device, {layer.get('op')} in the export")
        macs = int(layer.get("macs", 0))
        count = o.cycles * k
        rows.append(
            {
                "index": o.index,
                "op": name,
                "layer": tensor_label(str(layer.get("output", ""))),
                "cycles": count,  # in counter.unit
                "raw": o.cycles,  # as the device counted
                "share": o.cycles / total if total else None,
                "macs": macs,
                "macs_per_cycle": macs / count if count and macs else None,
            }
        )
    ops_sum = sum(o.cycles for o in prof.ops)
    return {
        "available": True,
        "counter": {"unit": counter.unit, "label": counter.label, "per_count": k},
        "op_count": prof.op_count,
        "recorded": len(prof.ops),
        "cycles_total": total * k,
        "cycles_ops": ops_sum * k,
        "cycles_interpreter": (total - ops_sum) * k if total >= ops_sum else None,
        "ops": rows,
        "problems": problems,  # non-empty: the firmware runs another model than the export describes
    }


def host_op_outputs(model_path: Path, arena: int, frame: np.ndarray) -> dict[int, np.ndarray]:
    """Every operator's output tensor on the host (tflite-micro reference kernels, all tensors kept),
    by tensor index."""
    from tflite_micro.python.tflite_micro import runtime

    model = model_path.read_bytes()
    graph = runtime.convert_bytearray_to_object(bytearray(model)).subgraphs[0]
    width = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8}
    all_bytes = sum(
        width.get(int(t.type), 8) * int(np.prod(t.shape if t.shape is not None else [1]))
        for t in graph.tensors
    )
    it = runtime.Interpreter.from_bytes(
        model,
        arena_size=arena + 2 * all_bytes,  # the proven arena + room to keep every tensor
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors,
    )
    details = it.get_input_details(0)
    shape = tuple(int(d) for d in details["shape"])
    it.set_input(np.ascontiguousarray(frame.reshape(shape), dtype=details["dtype"]), 0)
    it.invoke()
    outs: dict[int, np.ndarray] = {}
    for op in graph.operators:
        if op.outputs is not None and len(op.outputs):
            index = int(op.outputs[0])
            outs[index] = np.array(it.GetTensor(index, 0)["tensor_data"], copy=True).reshape(-1)
    return outs


def compare_op(
    dtype: int, device: bytes, host: np.ndarray, shape: list[int] | None = None
) -> dict[str, Any] | None:
    """How the device's output of one operator differs from the host's (None: identical). With the
    tensor's ``shape``, ``where`` gives the range of differing positions along each axis (e.g. only
    the last column: an edge case of a kernel's padding)."""
    dt = TENSOR_TYPES[dtype][1] if dtype in TENSOR_TYPES and dtype != 17 else None  # 17 int4: packed
    if dt is None or len(device) != host.nbytes or np.dtype(dt) != host.dtype:
        return {
            "values": int(host.size),
            "differing": int(host.size),
            "max_lsb": None,
            "why": f"device tensor {len(device)} B of type {dtype}, host {host.nbytes} B of {host.dtype}",
        }
    dev = np.frombuffer(device, dt)
    if np.array_equal(dev, host):
        return None
    diff = np.abs(dev.astype(np.float64) - host.astype(np.float64))
    bad = np.flatnonzero(diff)
    out: dict[str, Any] = {
        "values": int(host.size),
        "differing": int(bad.size),
        "max_lsb": float(diff.max()),
        "first_element": int(bad[0]),
    }
    if shape and int(np.prod(shape)) == host.size:
        pos = np.unravel_index(bad, tuple(shape))
        out["where"] = [[int(a.min()), int(a.max())] for a in pos]  # per axis: first..last differing
    return out


def layer_diff(
    dev: DeviceClient,
    sample: int,
    frame: np.ndarray,
    layers: list[dict[str, Any]],
    host: dict[int, np.ndarray],
) -> dict[str, Any]:
    """summary.json's ``layer_diff`` for one differing frame: the first operator whose output differs
    from ``host`` (``host_op_outputs`` of the same frame)."""
    base = {"frame": sample}
    if not dev.features() & p.Feature.TENSOR:
        return {**base, "available": False, "reason": "the device cannot return intermediate tensors"}
    dev.set_input(frame.tobytes())
    op_count = dev.info.op_count if dev.info is not None else len(layers)
    for k in range(op_count):
        t = dev.tensor(k)
        layer = layers[k] if k < len(layers) else {}
        if t.tensor_index not in host:
            return {
                **base,
                "available": False,
                "reason": f"the device's operator {k} writes tensor {t.tensor_index}, which the export's model "
                "has no operator for: the firmware runs another model",
            }
        d = compare_op(t.dtype, t.data, host[t.tensor_index], layer.get("output_shape"))
        if d is not None:
            return {
                **base,
                "available": True,
                "checked": k + 1,
                "first_layer": {
                    "index": k,
                    "op": str(layer.get("op", "?")),
                    "layer": tensor_label(str(layer.get("output", ""))),
                    "tensor_index": t.tensor_index,
                    "output_shape": layer.get("output_shape"),
                    **d,
                },
            }
    return {
        **base,
        "available": True,
        "checked": op_count,
        "first_layer": None,
        "reason": "every operator's output equals the host's on this frame (the difference did not repeat)",
    }


def first_mismatch(done: dict[int, dict[str, Any]], golden: np.ndarray) -> int | None:
    """The first sample whose device output differs from the golden (None: all equal)."""
    for i in sorted(done):
        if not np.array_equal(np.asarray(done[i]["output"]).reshape(-1), golden[i].reshape(-1)):
            return i
    return None


def describe_diff(diff: dict[str, Any]) -> str:
    """One line for the terminal and the report."""
    if not diff.get("available"):
        return f"per-layer diff of frame {diff['frame']}: not available ({diff.get('reason')})"
    first = diff.get("first_layer")
    if first is None:
        return f"per-layer diff of frame {diff['frame']}: {diff.get('reason')}"
    lsb = first.get("max_lsb")
    return (
        f"first layer that differs (frame {diff['frame']}): operator {first['index']} {first['op']} "
        f"({first['layer'] or 'tensor ' + str(first['tensor_index'])}): {first['differing']} of "
        f"{first['values']} values"
        + (f", max {lsb:g} LSB" if lsb is not None else f" ({first.get('why')})")
        + (f", at {_where_text(first['where'], first.get('output_shape'))}" if first.get("where") else "")
        + f"; operators 0..{first['index'] - 1} match the host" * (first["index"] > 0)
    )


def _where_text(where: list[list[int]], shape: list[int] | None) -> str:
    """``[1, 1, 312, 8]`` / ``[[0, 0], [0, 0], [311, 311], [0, 7]]`` -> ``[0, 0, 311, 0..7] of [1, 1, 312, 8]``."""
    axes = [str(a) if a == b else f"{a}..{b}" for a, b in where]
    return f"[{', '.join(axes)}]" + (f" of {shape}" if shape else "")


def add_report_sections(r: Any, summary: dict[str, Any]) -> None:
    """The validate report's per-layer profile (table + bar chart) and per-layer diff."""
    from hkdeploy.report.html import hbars_figure

    prof = summary.get("profile") or {"available": False, "reason": "not taken"}
    r.heading("Per-layer profile", "profile")
    if not prof["available"]:
        r.text(f"Not available: {prof['reason']}.")
    else:
        unit = prof["counter"]["unit"]
        r.text(
            f"One Invoke() of the first test frame, {prof['cycles_total']:,.0f} {unit} ({prof['counter']['label']}); "
            f"the operators account for {prof['cycles_ops']:,.0f}, the interpreter for the rest. MACs from the export."
        )
        for problem in prof["problems"]:
            r.text(f"Warning: {problem}: rebuild and flash the firmware (hkdeploy run).", "verdict-fail")
        r.table(
            ["#", "op", "layer", unit, "share", "MACs", f"MACs/{unit}"],
            [
                [o["index"], o["op"], o["layer"], o["cycles"], o["share"], o["macs"], o["macs_per_cycle"]]
                for o in prof["ops"]
            ],
        )
        r.figure(
            hbars_figure(
                [f"{o['index']} {o['op']}" for o in prof["ops"]],
                [o["cycles"] for o in prof["ops"]],
                f"{unit} per operator",
                unit,
            ),
            "per-operator profile",
        )
    diff = summary.get("layer_diff")
    if diff is not None:
        r.heading("Per-layer diff", "layer-diff")
        r.text(describe_diff(diff) + ".")
        first = diff.get("first_layer")
        if first:
            r.key_values({k: v for k, v in first.items()})

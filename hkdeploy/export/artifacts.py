"""Render the firmware-facing artifacts: model_buffer.h, model_ops.h, model_config.h.

Byte-for-byte reproducible: no timestamps, LF endings, content depends only on the model bytes,
the config and the hkdeploy version.
"""

from __future__ import annotations

from collections.abc import Sequence

from hkdeploy import __version__
from hkdeploy.codegen import c_bytes, include_guard, render_template
from hkdeploy.export.inspect import ModelInfo, TensorInfo
from hkdeploy.export.tflm_ops import TFLM_RESOLVER_METHODS
from hkdeploy.tflm import ArenaResult


def _c_float(value: float) -> str:
    text = f"{value:.9g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    return text


def _c_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_model_buffer(model: bytes, info: ModelInfo, var: str, model_name: str) -> str:
    return render_template(
        "model_buffer.h.j2",
        var=var,
        model_name=_c_string(model_name),
        version=__version__,
        sha256=info.sha256,
        size=len(model),
        guard=include_guard(var, "buffer_h"),
        array=c_bytes(model),
    )


def render_model_ops(info: ModelInfo, var: str, model_name: str) -> str:
    ops = [
        {"name": name, "method": TFLM_RESOLVER_METHODS[name], "count": count}
        for name, count in info.ops.items()
    ]
    return render_template(
        "model_ops.h.j2",
        ops=ops,
        model_name=_c_string(model_name),
        version=__version__,
        sha256=info.sha256,
        guard=include_guard(var, "ops_h"),
    )


def render_model_config(
    info: ModelInfo, arena: ArenaResult, var: str, model_name: str, class_names: Sequence[str]
) -> str:
    def tensor(role: str, t: TensorInfo) -> dict[str, object]:
        return {"role": role, "info": t, "scale": _c_float(t.scale)}

    return render_template(
        "model_config.h.j2",
        var=var,
        model_name=_c_string(model_name),
        version=__version__,
        sha256=info.sha256,
        sha256_bytes=", ".join(f"0x{info.sha256[i : i + 2]}" for i in range(0, 64, 2)),
        size=info.size,
        arena=arena,
        tensors=[tensor("INPUT", info.input), tensor("OUTPUT", info.output)],
        class_names=[_c_string(c) for c in class_names],
        guard=include_guard(var, "config_h"),
    )

"""``hkdeploy export``."""

from __future__ import annotations

from hkdeploy.cli import cli, with_params
from hkdeploy.config import LoadedConfig
from hkdeploy.console import info


@cli.command("export")
@with_params("export")
def export_cmd(loaded: LoadedConfig) -> None:
    """Keras -> int8 TFLite (batch 1) -> three-way check -> TFLM headers, arena, report."""
    from hkdeploy.export import export

    result = export(loaded.params)
    m, a = result.model_info, result.arena
    info(
        f"exported {m.size} bytes ({', '.join(f'{k}x{v}' for k, v in m.ops.items())}); arena {a.board} B "
        f"(host min {a.host_min} B); {result.report['verdict']['message']}"
    )
    fops = result.report.get("float_ops") or []
    if fops:
        from hkdeploy.export.integrity import FloatOp, float_ops_summary

        info(float_ops_summary([FloatOp(**f) for f in fops]) + " (quantization.fallback is true)")
    for rec in result.report.get("rewrites") or []:
        info(
            f"rewrite {rec['name']}: {', '.join(rec['layers'])} (float max |diff| {rec['max_abs_diff']:.3g})"
        )
    info(f"artifacts: {result.export_dir}")

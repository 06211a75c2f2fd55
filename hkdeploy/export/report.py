"""report.html of the export: verdict, model, arena and board fit, metrics of each leg and pair, plots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hkdeploy.report.html import HtmlReport, bars_figure, confusion_figure, histogram_figure

LEG_TITLES = {
    "keras_float": "Keras float",
    "tflite_int8": "TFLite (host, no delegates)",
    "tflm": "TFLM golden",
}


def render_html(
    report: dict[str, Any], labels: Sequence[str], errors: np.ndarray | None = None
) -> HtmlReport:
    """Build the export report page from the export_report.json structure."""
    r = HtmlReport(f"hkdeploy export: {report['name']}", f"hkdeploy {report['hkdeploy_version']}")
    v = report["verdict"]
    r.heading("Verdict", "verdict")
    r.verdict(bool(v["passed"]), v["message"])
    test = report.get("test", {})
    if test.get("requested") and test.get("frames") is not None and test["frames"] < test["requested"]:
        r.text(
            f"test_size asked for {test['requested']} frames; the data has {test['frames']}: every metric "
            "is over those."
        )

    m = report["model"]
    r.heading("Model", "model")
    r.key_values(
        {
            "format": report["quantization"]["format"],
            "I/O type": report["quantization"]["io_type"],
            "size (bytes)": m["size"],
            "parameters": m["params"],
            "MACs": m["macs"],
            "SHA-256": m["sha256"],
            "input": f"{m['input']['dtype']} {m['input']['shape']} scale {m['input']['scale']:.6g} "
            f"zp {m['input']['zero_point']}",
            "output": f"{m['output']['dtype']} {m['output']['shape']} scale {m['output']['scale']:.6g} "
            f"zp {m['output']['zero_point']}",
        }
    )
    r.table(["op", "count"], [[k, c] for k, c in m["ops"].items()])
    r.heading("Layers", "layers")
    r.table(
        ["#", "op", "output shape", "MACs", "params"],
        [[x["index"], x["op"], x["output_shape"], x["macs"], x["params"]] for x in m["layers"]],
    )

    a, fit = report["arena"], report["board_fit"]
    r.heading("Arena and board fit", "arena")
    t32 = a.get("target32")
    sizing: dict[str, object] = (
        {
            f"32-bit minimum on {t32['board']} ({t32['kernels']}; bytes)": t32["bytes"],
            "board arena (32-bit min + margin, 16-aligned)": f"{a['board']} ({t32['ratio']:.3f}x the 32-bit minimum)",
            "margin covers": t32["margin"]["covers"],
            "how measured": t32["how"],
            "board arena from the host figure would be": t32["host_based_board"],
        }
        if t32
        else {"board arena (host min + margin, 16-aligned)": a["board"]}
    )
    r.key_values(
        {
            "smallest working host arena (bytes)": a["host_min"],
            **sizing,
            "probes (subprocess each)": a["probes"],
            f"model vs {fit['limits_of']} app MRAM": f"{fit['model_bytes']} / {fit['app_mram_bytes']}",
            f"arena vs {fit['limits_of']} SRAM": f"{fit['arena_bytes']} / {fit['sram_bytes']}",
        }
    )

    r.heading("Metrics", "metrics")
    legs = report["metrics"]
    r.table(
        ["", *[LEG_TITLES[k] for k in legs]],
        [
            ["accuracy", *[legs[k]["accuracy"] for k in legs]],
            ["macro F1", *[legs[k]["macro_f1"] for k in legs]],
        ],
    )
    pairs = report["pairs"]
    keys = ["top1_agreement", "rmse", "mae", "max_abs_err", "l2_relative", "cosine", "exact_match", "max_lsb"]
    r.table(["pair", *keys], [[p.replace("__", " ▸ "), *[pairs[p][k] for k in keys]] for p in pairs])
    r.heading("Confusion matrices", "confusion")
    for k in legs:
        r.figure(confusion_figure(legs[k]["confusion"], labels, LEG_TITLES[k]), f"confusion matrix {k}")
    r.heading("Per-class metrics", "per-class")
    r.figure(
        bars_figure({LEG_TITLES[k]: legs[k]["f1"] for k in legs}, labels, "F1 per class", "F1"),
        "per-class F1",
    )
    if errors is not None and errors.size:
        r.heading("Output error", "errors")
        r.figure(
            histogram_figure(errors.ravel().tolist(), "Keras float − TFLM (dequantized outputs)", "error"),
            "output error histogram",
        )
    if report.get("qat"):
        r.heading("Quantization-aware training", "qat")
        r.key_values(report["qat"])
    if report.get("quantization_debug"):
        r.heading("Per-layer quantization error", "debug")
        rows = report["quantization_debug"]
        r.table(list(rows[0]), [list(x.values()) for x in rows])
    r.heading("Timings", "timings")
    r.key_values({k: f"{t:.2f} s" for k, t in report["timings_s"].items()})
    return r

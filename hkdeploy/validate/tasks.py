"""The segmentation and denoise side of ``hkdeploy validate`` (device ▸ TFLM golden ▸ Keras float).

Device vs golden is compared on the raw integer outputs (exact-match rate, max LSB) and, for
segmentation, per time step (the predicted class of every step). The verdict bounds the drop
(segmentation) or degradation (denoise) from Keras float to the device, as in the export.
No TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from hkdeploy import metrics, tasks
from hkdeploy.config.params import DeployParams


def task_of(report: dict[str, Any]) -> tasks.Task | None:
    """The export's task when it is not classification, else None."""
    t = report.get("task") or {}
    if t.get("kind", "classification") == "classification":
        return None
    return tasks.Task(t["name"], t["kind"], t.get("reason", ""))


def live_score(output: list[int], label: Any, out_shape: tuple[int, ...]) -> float:
    """The progress bar's running score of one result: class hit, or time-step accuracy."""
    if np.ndim(label) == 0:
        return float(int(np.argmax(output)) == int(label))
    if len(out_shape) == 2 and out_shape[1] > 1:
        pred = np.asarray(output).reshape(out_shape).argmax(-1)
        return float(np.mean(pred == np.asarray(label)))
    return 0.0


def summarize_task(
    params: DeployParams,
    task: tasks.Task,
    report: dict[str, Any],
    data: dict[str, npt.NDArray[Any]],
    ids: list[int],
    device_raw: npt.NDArray[Any],
    golden_raw: npt.NDArray[Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, bool], dict[str, Any]]:
    """(legs, pairs, checks, verdict) of a segmentation / denoise validation."""
    out_q = report["model"]["output"]
    out_shape = tuple(out_q["shape"][1:])
    dev_f = metrics.dequantize(device_raw, out_q["scale"], out_q["zero_point"]).reshape(len(ids), -1)
    gold_f = metrics.dequantize(golden_raw, out_q["scale"], out_q["zero_point"]).reshape(len(ids), -1)
    keras_f = data["keras_float"][ids].reshape(len(ids), -1)
    integer = out_q["dtype"] in ("int8", "uint8", "int16")
    raw = {"device": device_raw, "tflm_golden": golden_raw} if integer else None
    x = data.get("x")
    result = tasks.evaluate(
        task,
        {"device": dev_f, "tflm_golden": gold_f, "keras_float": keras_f},
        data["y"][ids],
        None if x is None else x[ids],
        out_shape,
        params.num_classes,
        raw,
    )
    legs, pairs = result["legs"], result["pairs"]
    pairs["device__keras_float"] = metrics.compare(dev_f, keras_f).to_dict()
    v = tasks.verdict(
        task,
        legs,
        "keras_float",
        "device",
        params.test_metric,
        params.val_metric,
        params.test_metric_threshold,
    )
    exact = pairs["device__tflm_golden"].get("exact_match")
    checks = {
        "all_samples": len(ids) == len(data["y"]),
        "device_matches_golden": exact is None or exact == 1.0,
        "metric_drop": bool(v["passed"]),
    }
    step = pairs["device__tflm_golden"].get("time_step_agreement")
    extra = f"; device == TFLM golden on {exact:.1%} of frames" if exact is not None else ""
    if step is not None:
        extra += f", {step:.2%} of time steps"
    verdict = {
        "passed": all(checks.values()),
        "message": f"{len(ids)} frames: {v['message']}{extra}",
        "metric": v["metric"],
        "drop": v["drop"],
        "threshold": v["threshold"],
    }
    return legs, pairs, checks, verdict


def write_task_report(out: Any, summary: dict[str, Any], params: DeployParams, data: dict[str, Any]) -> None:
    """report.html of a segmentation / denoise validation (summary.json and junit are the caller's)."""
    from hkdeploy.report.html import HtmlReport, histogram_figure
    from hkdeploy.report.tasks_html import add_task_sections

    r = HtmlReport(
        f"hkdeploy validate: {params.name}", f"{summary['frames']} frames on {summary['device'].get('board')}"
    )
    r.heading("Verdict", "verdict")
    r.verdict(summary["verdict"]["passed"], summary["verdict"]["message"])
    r.table(["check", "passed"], [[k, v] for k, v in summary["checks"].items()])
    example = summary.get("_example")
    add_task_sections(r, summary["task"], summary["metrics"], summary["pairs"], params.labels(), example)
    lat = summary["latency"]
    r.heading("Latency", "latency")
    if not lat.get("measured", True):
        r.text(f"Latency: not measured ({lat['reason']}).")
    else:
        r.table(
            ["", "min", "median", "p95", "max"],
            [[u, *[lat[u][s] for s in ("min", "median", "p95", "max")]] for u in ("cycles", "micros")],
        )
    if summary.get("_micros") and lat.get("measured", True):
        r.figure(histogram_figure(summary["_micros"], "Invoke latency", "µs"), "latency histogram")
    from hkdeploy.validate.layers import add_report_sections

    add_report_sections(r, summary)
    r.write(out / "report.html")


def example_frame(
    task: tasks.Task, report: dict[str, Any], data: dict[str, Any], first: int, device_raw: npt.NDArray[Any]
) -> dict[str, Any]:
    """Input, labels/target, float and device output of the first validated frame, for the plot."""
    out_q = report["model"]["output"]
    out_shape = tuple(out_q["shape"][1:])
    dev = tasks.as_steps(metrics.dequantize(device_raw[:1], out_q["scale"], out_q["zero_point"]), out_shape)[
        0
    ]
    kf = tasks.as_steps(data["keras_float"][first : first + 1].reshape(1, -1), out_shape)[0]
    x = data["x"][first] if "x" in data else data["input_raw"][first]
    if task.kind == "segmentation":
        series = {"labels": data["y"][first], "Keras float": kf.argmax(-1), "device": dev.argmax(-1)}
    else:
        series = {"target": data["y"][first], "Keras float": kf, "device": dev}
    return {"x": x, "series": series}

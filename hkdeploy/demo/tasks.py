"""``hkdeploy demo`` for the segmentation and denoise tasks: consecutive frames of one record through
the deployed model; per frame the time-step accuracy (segmentation) or MSE and SNR improvement
(denoise) print as they come; ``job_dir/demo`` receives demo.json, demo.png (the signal with the
label / predicted class strips over time, or input / target / output signals) and demo.html.
No TensorFlow."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt

from hkdeploy import metrics, tasks
from hkdeploy.config.params import DeployParams
from hkdeploy.console import console, info
from hkdeploy.fsutil import write_bytes, write_json


def run_task_demo(
    params: DeployParams,
    report: dict[str, Any],
    task: tasks.Task,
    backend: Any,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[Any],
    record: int,
    backend_name: str,
) -> tuple[list[dict[str, Any]], float]:
    """Run every frame on ``backend``, write the demo files; returns (frames, headline figure).

    The headline figure is the time-step accuracy (segmentation) or the mean SNR improvement in dB
    (denoise).
    """
    qin, qout = report["model"]["input"], report["model"]["output"]
    out_shape = tuple(qout["shape"][1:])
    frames: list[dict[str, Any]] = []
    outputs = []
    for i, frame in enumerate(x):
        raw_in = metrics.quantize(frame, qin["scale"], qin["zero_point"], np.dtype(qin["dtype"]))
        out, micros = backend.run(np.asarray(raw_in).reshape(qin["shape"]))
        deq = tasks.as_steps(
            metrics.dequantize(out.reshape(1, -1), qout["scale"], qout["zero_point"]), out_shape
        )[0]
        rec: dict[str, Any] = {"frame": i, "micros": micros}
        if task.kind == "segmentation":
            pred = deq.argmax(-1)
            outputs.append(pred)
            rec["time_step_accuracy"] = float(np.mean(pred == y[i]))
            line = f"time-step accuracy {rec['time_step_accuracy']:.3f}"
        else:
            sig = deq.reshape(-1)
            outputs.append(sig)
            m = tasks.regression(y[i][None], sig[None], frame.reshape(1, -1))
            rec.update({k: m[k] for k in ("mse", "snr_in_db", "snr_out_db", "snr_improvement_db") if k in m})
            line = f"MSE {m['mse']:.4f}  SNR {m.get('snr_in_db', float('nan')):+.1f} -> {m['snr_out_db']:+.1f} dB"
        frames.append(rec)
        console.print(f"frame {i + 1:>4}/{len(x)}  {line}  {micros:9.1f} µs", markup=False, highlight=False)
    pred_all = np.stack(outputs)
    if task.kind == "segmentation":
        overall: dict[str, Any] = tasks.segmentation(y, pred_all, params.num_classes)
        headline = float(overall["accuracy"])
        said = f"time-step accuracy {headline:.1%}, mean IoU {overall['mean_iou']:.3f}"
    else:
        overall = tasks.regression(y, pred_all, x.reshape(len(x), -1))
        headline = float(overall.get("snr_improvement_db", float("nan")))
        said = f"MSE {overall['mse']:.4f}, SNR improvement {headline:+.1f} dB"
    out_dir = params.demo_dir
    summary = {
        "schema": "hkdeploy.demo/1",
        "task": task.to_dict(),
        "backend": backend_name,
        "device": backend.label,
        "record": record,
        "metrics": overall,
        "latency_us": metrics.latency_stats([f["micros"] for f in frames]),
        "frames": frames,
    }
    write_json(out_dir / "demo.json", summary)
    png = _figure(task, x, y, pred_all, params, f"{backend_name}: {backend.label}")
    write_bytes(out_dir / "demo.png", png)
    _html(out_dir / "demo.html", summary, png)
    info(f"demo: {said} over {len(frames)} frames; {out_dir / 'demo.html'}")
    return frames, headline


def _figure(
    task: tasks.Task,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[Any],
    pred: npt.NDArray[Any],
    params: DeployParams,
    title: str,
) -> bytes:
    from hkdeploy.report.html import _plt

    plt = _plt()
    signal = x[..., 0].reshape(-1)
    t = np.arange(len(signal)) / params.sampling_rate
    kind = params.signal_type or "signal"
    if task.kind == "segmentation":
        labels = params.labels()
        fig, (ax1, ax2) = plt.subplots(
            2, 1, figsize=(11, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]}
        )
        ax1.plot(t, signal, lw=0.6, color="#1f4e79")
        ax1.set_ylabel(f"{kind} (normalized)")
        ax1.set_title(title)
        cmap = plt.get_cmap("tab10", max(len(labels), 2))
        strips = np.stack([np.asarray(y).reshape(-1), pred.reshape(-1)])
        ax2.imshow(
            strips,
            aspect="auto",
            cmap=cmap,
            vmin=0,
            vmax=max(len(labels) - 1, 1),
            extent=(t[0], t[-1], 1.5, -0.5),
        )
        ax2.set_yticks([0, 1], ["label", "predicted"])
        ax2.set_xlabel("time (s)")
        handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(labels))]
        ax2.legend(
            handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=len(labels), frameon=False
        )
    else:
        fig, ax1 = plt.subplots(1, 1, figsize=(11, 3.5))
        ax1.plot(t, signal, lw=0.6, color="#aaaaaa", label="input")
        ax1.plot(t, np.asarray(y).reshape(-1), lw=0.8, color="#2e7d32", label="target")
        ax1.plot(t, pred.reshape(-1), lw=0.8, color="#c62828", label="device output")
        ax1.set_ylabel(kind)
        ax1.set_xlabel("time (s)")
        ax1.set_title(title)
        ax1.legend(fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _html(path: Any, summary: dict[str, Any], png: bytes) -> None:
    from hkdeploy.report.html import HtmlReport

    r = HtmlReport(
        f"hkdeploy demo ({summary['backend']}): {summary['task']['name']}",
        f"record {summary['record']} on {summary['device']}",
    )
    r.heading("Signal and outputs", "signal")
    r.image(png, "signal and outputs over time")
    r.heading("Summary", "summary")
    scalars = {k: v for k, v in summary["metrics"].items() if not isinstance(v, list)}
    lat = summary["latency_us"]
    r.key_values({**scalars, "latency median (µs)": lat["median"], "latency max (µs)": lat["max"]})
    r.heading("Frames", "frames")
    keys = [k for k in summary["frames"][0] if k != "frame"] if summary["frames"] else []
    r.table(["frame", *keys], [[f["frame"], *[f.get(k) for k in keys]] for f in summary["frames"]])
    r.write(path)

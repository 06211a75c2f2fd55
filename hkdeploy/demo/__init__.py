"""``hkdeploy demo``: consecutive frames of one record through the deployed model, shown live.

``demo_size`` consecutive frames of one seeded test record run on a backend: ``pc`` (the TFLM
runtime in this process), ``sim`` (the virtual EVB) or ``evb`` (a real board over the link). Each
frame's prediction, label, confidence and latency print as they come; ``job_dir/demo`` receives
``demo.html`` and ``demo.png`` (signal and predicted classes over time) and ``demo.json``.
Backends are found by name through ``BackendFactory``. No TensorFlow.
"""

from __future__ import annotations

import os
import sys
import time
import webbrowser
from abc import ABC, abstractmethod
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from hkdeploy import metrics
from hkdeploy.config.params import DeployParams
from hkdeploy.console import console, info
from hkdeploy.contracts import ExportManifest, load_export
from hkdeploy.factory import Factory
from hkdeploy.fsutil import write_bytes, write_json
from hkdeploy.platforms.base import Counter
from hkdeploy.validate.tasks import task_of


class Backend(ABC):
    """Runs one quantized frame; a context manager (it may start a process or open a port)."""

    label: str = ""
    counter: Counter = Counter("host ns", "host time of this computer's TFLM runtime", real_time=False)

    def __init__(
        self, params: DeployParams, export: ExportManifest, port: str | None = None, board: str | None = None
    ) -> None:
        self.params, self.export, self.port, self.board = params, export, port, board
        self.stack = ExitStack()

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stack.close()

    @abstractmethod
    def run(self, frame: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], float]:
        """Output tensor (raw) and latency in microseconds."""


class PcBackend(Backend):
    """The TFLM runtime in this process (the golden reference's kernels); latency is host time."""

    label = "pc (host TFLM)"

    def __enter__(self) -> Backend:
        from hkdeploy.tflm import TflmRunner

        model = (self.params.export_dir / "model.tflite").read_bytes()
        self.runner = TflmRunner(model, self.export.arena.host)
        return self

    def run(self, frame: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], float]:
        t0 = time.perf_counter()
        out = self.runner.run(frame)
        return out.reshape(-1), (time.perf_counter() - t0) * 1e6


class LinkBackend(Backend):
    """The target's device over the link (``evb``: the config's board, or ``--port``)."""

    backend = "evb"

    def __enter__(self) -> Backend:
        from hkdeploy.platforms import connect, open_devices, platform_of, target_board
        from hkdeploy.platforms.base import counter_from_hello

        params = self.params.model_copy(update={"backend": self.backend})
        board = target_board(params, self.board)
        self.params.demo_dir.mkdir(parents=True, exist_ok=True)
        urls = self.stack.enter_context(
            open_devices(params, board, [self.port] if self.port else [], 1, self.params.demo_dir)
        )
        self.dev = self.stack.enter_context(connect(params, urls[0]))
        hello = self.dev.check_ready(self.export.sha256)
        self.counter = counter_from_hello(
            hello.counter_kind, hello.board, platform_of(board).counter(board), hello.cpu_hz
        )
        self.label = f"{hello.board} over {urls[0]}"
        self.dtype = np.dtype(self.export.model.output.dtype)
        return self

    def run(self, frame: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], float]:
        r = self.dev.run(np.ascontiguousarray(frame).tobytes())
        return np.frombuffer(r.output, self.dtype).copy(), float(r.micros)


class SimBackend(LinkBackend):
    """The virtual EVB, started for the demo and always stopped."""

    backend = "sim"


BackendFactory: Factory[type[Backend]] = Factory("demo backend")
BackendFactory.register("pc", PcBackend)
BackendFactory.register("sim", SimBackend)
BackendFactory.register("evb", LinkBackend)


@dataclass
class DemoResult:
    frames: list[dict[str, Any]]
    accuracy: float  # segmentation: time-step accuracy; denoise: mean SNR improvement (dB)
    out_dir: Path


def pick_record(params: DeployParams) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], int]:
    """``demo_size`` consecutive frames of one seeded test record: (frames, labels, record id)."""
    from hkdeploy.datasets import load_split

    data = load_split(params, "test")
    n = params.demo_size or 1000
    pids = data.patient_ids if data.patient_ids is not None else np.zeros(len(data), np.int64)
    pos = data.record_pos if data.record_pos is not None else np.arange(len(data))
    records, counts = np.unique(pids, return_counts=True)
    rng = np.random.default_rng(params.seed + 3)
    long_enough = records[counts >= n]
    record = int(rng.choice(long_enough)) if len(long_enough) else int(records[np.argmax(counts)])
    idx = np.flatnonzero(pids == record)
    idx = idx[np.argsort(pos[idx], kind="stable")]
    start = int(rng.integers(0, len(idx) - n + 1)) if len(idx) > n else 0
    take = idx[start : start + n]
    return data.x[take], data.y[take], record


def demo(
    params: DeployParams, backend: str | None = None, port: str | None = None, board: str | None = None
) -> DemoResult:
    """Run the demo (see the module doc).

    Raises:
        UserError: no export, unknown backend. DeviceError: the board failed.
    """
    export = load_export(params.export_dir)
    name = backend or params.backend
    cls = BackendFactory.get(name, allow_import=True)
    x, y, record = pick_record(params)
    qin, qout = export.model.input, export.model.output
    labels = params.labels()
    frames: list[dict[str, Any]] = []
    report = export.model_dump(mode="json", by_alias=True)  # extra keys (task) included
    task = task_of(report)  # segmentation / denoise: hkdeploy.demo.tasks
    with cls(params, export, port, board) as be:
        info(f"demo: {len(x)} consecutive frames of test record {record} on {be.label}")
        info(f"demo: latency is {be.counter.label}")
        if task is not None:
            from hkdeploy.demo.tasks import run_task_demo

            task_frames, headline = run_task_demo(params, report, task, be, x, y, record, name)
            return DemoResult(task_frames, headline, params.demo_dir)
        for i, (frame, label) in enumerate(zip(x, y, strict=True)):
            raw_in = metrics.quantize(frame, qin.scale, qin.zero_point, np.dtype(qin.dtype))
            out, micros = be.run(np.asarray(raw_in).reshape(qin.shape))
            probs = metrics.dequantize(out.reshape(1, -1), qout.scale, qout.zero_point)[0]
            if params.use_logits:
                e = np.exp(probs - probs.max())
                probs = e / e.sum()
            pred = int(np.argmax(probs))
            uncertain = params.threshold is not None and float(probs[pred]) < params.threshold
            rec = {
                "uncertain": uncertain,
                "frame": i,
                "label": int(label),
                "prediction": pred,
                "confidence": float(probs[pred]),
                "micros": micros,
                "probabilities": [float(p) for p in probs],
            }
            frames.append(rec)
            mark = ("ok" if pred == int(label) else "MISS") + (" (below threshold)" if uncertain else "")
            console.print(
                f"frame {i + 1:>4}/{len(x)}  predicted {labels[pred]:<8} ({rec['confidence']:.2f})  "
                f"label {labels[int(label)]:<8} {mark:<4}  {micros:9.1f} µs",
                markup=False,
                highlight=False,
            )
    accuracy = float(np.mean([f["prediction"] == f["label"] for f in frames]))
    out_dir = params.demo_dir
    summary = {
        "schema": "hkdeploy.demo/1",
        "backend": name,
        "device": be.label,
        "record": record,
        "accuracy": accuracy,
        "threshold": params.threshold,
        "uncertain_frames": sum(f["uncertain"] for f in frames),
        "latency_us": metrics.latency_stats([f["micros"] for f in frames]),
        "latency_counter": {
            "unit": be.counter.unit,
            "label": be.counter.label,
            "real_time": be.counter.real_time,
        },
        "frames": frames,
    }
    write_json(out_dir / "demo.json", summary)
    png = _figure_png(x, frames, labels, params.sampling_rate, f"{name}: {be.label}")
    write_bytes(out_dir / "demo.png", png)
    _write_html(out_dir / "demo.html", summary, labels, png)
    info(f"demo: accuracy {accuracy:.1%} over {len(frames)} frames; {out_dir / 'demo.html'}")
    if params.display_report and _has_display():
        webbrowser.open((out_dir / "demo.html").resolve().as_uri())
    return DemoResult(frames, accuracy, out_dir)


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def _figure_png(
    x: npt.NDArray[np.float32], frames: list[dict[str, Any]], labels: list[str], rate: int, title: str
) -> bytes:
    import io

    from hkdeploy.report.html import _plt

    plt = _plt()
    signal = x[..., 0].reshape(-1)
    t = np.arange(len(signal)) / rate
    frame_s = x.shape[1] / rate
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(11, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    ax1.plot(t, signal, lw=0.6, color="#1f4e79")
    ax1.set_ylabel("signal (normalized)")
    ax1.set_title(title)
    cmap = plt.get_cmap("tab10")
    for f in frames:
        start = f["frame"] * frame_s
        ax2.barh(1, frame_s, left=start, color=cmap(f["prediction"] % 10), edgecolor="white", height=0.8)
        ax2.barh(0, frame_s, left=start, color=cmap(f["label"] % 10), edgecolor="white", height=0.8)
        if f["prediction"] != f["label"]:
            ax2.plot(start + frame_s / 2, 1, "kx")
    ax2.set_yticks([0, 1], ["label", "predicted"])
    ax2.set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i % 10)) for i in range(len(labels))]
    ax2.legend(
        handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=len(labels), frameon=False
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _write_html(path: Path, summary: dict[str, Any], labels: list[str], png: bytes) -> None:
    from hkdeploy.report.html import HtmlReport

    r = HtmlReport(
        f"hkdeploy demo ({summary['backend']})", f"record {summary['record']} on {summary['device']}"
    )
    r.heading("Signal and predictions", "signal")
    r.image(png, "signal and predicted classes")
    r.heading("Summary", "summary")
    lat = summary["latency_us"]
    r.text(f"Latency measured by: {summary['latency_counter']['label']}.")
    r.key_values(
        {
            "accuracy": summary["accuracy"],
            "latency median (µs)": lat["median"],
            "latency p95 (µs)": lat["p95"],
            "latency max (µs)": lat["max"],
        }
    )
    r.heading("Frames", "frames")
    r.table(
        ["frame", "predicted", "confidence", "label", "latency (µs)"],
        [
            [f["frame"], labels[f["prediction"]], f["confidence"], labels[f["label"]], f["micros"]]
            for f in summary["frames"]
        ],
    )
    r.write(path)

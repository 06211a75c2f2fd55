"""report.html pages for the segmentation and denoise tasks (export and validate), with plots of the
segmentation over time or of input / target / output signals. No TensorFlow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from hkdeploy.report.html import HtmlReport, _plt, bars_figure, confusion_figure

SEG_ROWS = ("accuracy", "macro_f1", "mean_iou", "per_sample_accuracy_mean", "per_sample_accuracy_min")
REG_ROWS = ("mse", "rmse", "mae", "cosine", "snr_in_db", "snr_out_db", "snr_improvement_db")


def signal_figure(
    x: npt.NDArray[Any], series: dict[str, npt.NDArray[Any]], title: str, ylabel: str = "signal"
) -> Any:
    """One frame: the input and each named series over time."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(np.asarray(x).reshape(-1), color="#999999", lw=1, label="input")
    for name, values in series.items():
        ax.plot(np.asarray(values).reshape(-1), lw=1.2, label=name)
    ax.set_title(title)
    ax.set_xlabel("time step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return fig


def segmentation_figure(
    x: npt.NDArray[Any], rows: dict[str, npt.NDArray[Any]], labels: Sequence[str], title: str
) -> Any:
    """One frame: the input signal above a class strip per series (labels, float, device...)."""
    plt = _plt()
    n = len(rows)
    fig, axes = plt.subplots(n + 1, 1, figsize=(8, 1.6 + 0.5 * n), sharex=True)
    axes[0].plot(np.asarray(x).reshape(-1), color="#333333", lw=1)
    axes[0].set_title(title)
    cmap = plt.get_cmap("tab10", max(len(labels), 2))
    for ax, (name, classes) in zip(axes[1:], rows.items(), strict=True):
        ax.imshow(
            np.asarray(classes).reshape(1, -1), aspect="auto", cmap=cmap, vmin=0, vmax=max(len(labels) - 1, 1)
        )
        ax.set_yticks([0], [name])
    axes[-1].set_xlabel("time step")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(len(labels))]
    fig.legend(handles, list(labels), loc="lower center", ncol=min(len(labels), 6), fontsize="small")
    fig.subplots_adjust(bottom=0.25)
    return fig


def add_task_sections(
    r: HtmlReport,
    task: dict[str, Any],
    legs: dict[str, Any],
    pairs: dict[str, Any],
    labels: Sequence[str],
    example: dict[str, Any] | None = None,
) -> None:
    """Metric tables and figures for a segmentation or regression task."""
    r.heading(f"Task: {task['name']}", "task")
    r.text(f"{task['kind']} ({task['reason']})")
    rows = SEG_ROWS if task["kind"] == "segmentation" else REG_ROWS
    r.table(["", *legs], [[k, *[legs[leg].get(k) for leg in legs]] for k in rows])
    keys = sorted({k for p in pairs.values() for k in p})
    r.table(["pair", *keys], [[p.replace("__", " ▸ "), *[pairs[p].get(k) for k in keys]] for p in pairs])
    if task["kind"] == "segmentation":
        r.heading("Confusion over time steps", "confusion")
        for k in legs:
            r.figure(confusion_figure(legs[k]["confusion"], labels, k), f"confusion {k}")
        r.heading("Per-class F1 and IoU", "per-class")
        r.figure(bars_figure({k: legs[k]["f1"] for k in legs}, labels, "F1 per class", "F1"), "per-class F1")
        r.figure(
            bars_figure({k: legs[k]["iou"] for k in legs}, labels, "IoU per class", "IoU"), "per-class IoU"
        )
    if example:
        r.heading("Example frame", "example")
        if task["kind"] == "segmentation":
            r.figure(
                segmentation_figure(example["x"], example["series"], labels, "segmentation over time"), "seg"
            )
        else:
            r.figure(signal_figure(example["x"], example["series"], "input, target and outputs"), "signals")

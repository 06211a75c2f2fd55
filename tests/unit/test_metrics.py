"""The metric set, against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hkdeploy import metrics


def test_classification_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    m = metrics.classification(y, p, 3)
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # class 0: P=1/2 R=1/2 F1=1/2; class 1: P=2/3 R=1 F1=0.8; class 2: P=1 R=1/2 F1=2/3
    assert m.f1 == pytest.approx([0.5, 0.8, 2 / 3])
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m.metric("f1") == m.macro_f1 and m.metric("acc") == m.accuracy


def test_compare_by_hand() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 0.0], [0.0, 1.0]])
    c = metrics.compare(a, b, np.array([[10, 0], [0, 7]]), np.array([[10, 0], [0, 4]]))
    assert c.top1_agreement == 1.0
    assert c.rmse == pytest.approx(np.sqrt(1 / 4))
    assert c.mae == pytest.approx(1 / 4)
    assert c.max_abs_err == 1.0
    assert c.l2_relative == pytest.approx(1 / np.sqrt(2))
    assert c.cosine == pytest.approx(1.0)
    assert c.exact_match == 0.5 and c.max_lsb == 3


def test_quantize_dequantize_round_trip() -> None:
    x = np.array([-1.0, -0.5, 0.0, 0.49, 10.0])
    q = metrics.quantize(x, 0.01, -3, np.int8)
    assert q.tolist() == [-103, -53, -3, 46, 127]  # saturates at 127
    assert metrics.dequantize(q, 0.01, -3)[:4] == pytest.approx([-1.0, -0.5, 0.0, 0.49], abs=1e-6)
    assert metrics.quantize(x, 0.0, 0, np.float32).dtype == np.float32


def test_quantize_rounds_half_away_from_zero_like_tflite() -> None:
    # 0.5 and 2.5 steps: np.round would give 0 and 2 (half to even); TFLite's std::round gives 1 and 3.
    x = np.array([0.5, 2.5, -0.5, -2.5, 1.49]) * 0.25
    assert metrics.quantize(x, 0.25, 0, np.int8).tolist() == [1, 3, -1, -3, 1]
    assert metrics.quantize(np.array([0.5, -0.5]), 1.0, 10, np.uint8).tolist() == [11, 9]


def test_latency_stats() -> None:
    s = metrics.latency_stats(np.arange(1, 101))
    assert s["min"] == 1 and s["max"] == 100 and s["median"] == 50.5 and s["p95"] == pytest.approx(95.05)

"""Segmentation and denoise through export: task inferred or set, task metrics, TFLM == TFLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy import tasks
from hkdeploy.config import load_params
from hkdeploy.errors import UserError
from tests.tasks.conftest import task_config

pytest.importorskip("keras", reason="pip install tensorflow-cpu keras")


def test_segmentation_metrics_by_hand() -> None:
    y = np.array([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    m = tasks.segmentation(y, pred, 3)
    assert m["accuracy"] == 6 / 8
    assert m["per_sample_accuracy_mean"] == 0.75 and m["per_sample_accuracy_min"] == 0.75
    # class 0: tp 2 (steps 0, 7), fp 1 (step 6), fn 1 (step 1) -> IoU 2/4; class 1: tp 2, fp 1 -> 2/3
    assert m["iou"] == pytest.approx([0.5, 2 / 3, 2 / 3])
    assert m["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 2]]


def test_regression_metrics_by_hand() -> None:
    y = np.array([[1.0, -1.0, 1.0, -1.0]])
    x = y + np.array([[0.5, 0.5, -0.5, -0.5]])
    pred = y * 0.9
    m = tasks.regression(y, pred, x)
    assert (
        m["mse"] == pytest.approx(0.01) and m["mae"] == pytest.approx(0.1) and m["cosine"] == pytest.approx(1)
    )
    assert m["snr_in_db"] == pytest.approx(10 * np.log10(4 / 1.0))
    assert m["snr_out_db"] == pytest.approx(10 * np.log10(4 / 0.04))
    assert m["snr_improvement_db"] == pytest.approx(20.0 - 6.0206, abs=1e-3)
    assert tasks.degradation("mse", 0.01, 0.02) == pytest.approx(0.01)
    assert tasks.degradation("cosine", 0.99, 0.97) == pytest.approx(0.02)


def test_task_inference_and_mismatch() -> None:
    assert tasks.infer(np.zeros(5, np.int64)).kind == "classification"
    assert tasks.infer(np.zeros((5, 8), np.int64)).name == "segmentation"
    assert tasks.infer(np.zeros((5, 8), np.float32)).name == "denoise"
    with pytest.raises(UserError, match="task is denoise"):
        tasks.resolve("denoise", np.zeros((5, 8), np.int64))


def test_unet_segmentation_export(seg_job: dict[str, Path], tmp_path: Path) -> None:
    from hkdeploy.export.api import export

    cfg = task_config(seg_job["data"], seg_job["model"], tmp_path / "job", num_classes=3, test_metric="f1")
    result = export(load_params(data=cfg).params, show_progress=False)
    report: dict[str, Any] = json.loads((result.export_dir / "export_report.json").read_text())
    assert report["task"]["name"] == "segmentation" and report["task"]["reason"].startswith("inferred")
    assert report["test"]["frames"] == 100
    legs = report["metrics"]
    assert legs["keras_float"]["accuracy"] > 0.8, legs["keras_float"]
    assert len(legs["tflm"]["iou"]) == 3 and legs["tflm"]["time_steps"] == 100 * 64
    pair = report["pairs"]["tflite_int8__tflm"]
    assert pair["exact_match"] == 1.0 and pair["time_step_agreement"] == 1.0
    assert report["verdict"]["metric"] == "macro_f1" and report["verdict"]["passed"]
    assert [r["name"] for r in report["rewrites"]] == ["upsampling_nearest"]
    assert "RESIZE_NEAREST_NEIGHBOR" in report["model"]["ops"] and "TILE" not in report["model"]["ops"]
    html = (result.export_dir / "report.html").read_text()
    assert "Task: segmentation" in html and "Confusion over time steps" in html
    with np.load(result.export_dir / "test_data.npz") as d:
        assert d["y"].shape == (100, 64)


def test_denoise_export_with_flatten(den_job: dict[str, Path], tmp_path: Path) -> None:
    from hkdeploy.export.api import export

    cfg = task_config(
        den_job["data"],
        den_job["model"],
        tmp_path / "job",
        task="denoise",
        flatten=True,
        val_metric="loss",
        test_metric_threshold=0.01,
    )
    result = export(load_params(data=cfg).params, show_progress=False)
    report = json.loads((result.export_dir / "export_report.json").read_text())
    assert report["task"] == {"name": "denoise", "kind": "regression", "reason": "set in the config"}
    assert report["model"]["output"]["shape"] == [1, 64]  # flattened, as HeartKit's denoise export
    float_leg, tflm_leg = report["metrics"]["keras_float"], report["metrics"]["tflm"]
    assert float_leg["snr_improvement_db"] > 3, float_leg
    assert tflm_leg["mse"] >= 0 and set(tasks.REGRESSION_METRICS) <= set(tflm_leg)
    v = report["verdict"]
    assert v["metric"] == "mse" and v["drop"] == pytest.approx(tflm_leg["mse"] - float_leg["mse"])
    assert report["pairs"]["tflite_int8__tflm"]["exact_match"] == 1.0

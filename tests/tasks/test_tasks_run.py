"""A U-Net segmentation model and a denoise model through ``hkdeploy run`` on the virtual EVB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hkdeploy.cli import main
from hkdeploy.config import load_params
from hkdeploy.demo import demo
from tests.tasks.conftest import task_config

pytest.importorskip("keras", reason="pip install tensorflow-cpu keras")


def _run(cfg: dict, tmp_path: Path) -> tuple[dict, dict]:  # type: ignore[type-arg]
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({**cfg, "backend": "sim"}))
    assert main(["run", "-c", str(path)]) == 0
    job = Path(cfg["job_dir"])
    report = json.loads((job / "export" / "export_report.json").read_text())
    summary = json.loads((job / "validate" / "summary.json").read_text())
    assert (job / "validate" / "report.html").stat().st_size > 1000
    assert "junit" not in json.dumps(summary) and (job / "validate" / "junit.xml").exists()
    return report, summary


def test_unet_segmentation_runs_on_the_virtual_evb(seg_job: dict[str, Path], tmp_path: Path) -> None:
    cfg = task_config(
        seg_job["data"], seg_job["model"], tmp_path / "job", num_classes=3, task="segmentation", test_size=40
    )
    report, summary = _run(cfg, tmp_path)
    assert summary["task"]["name"] == "segmentation" and summary["frames"] == 40
    pair = summary["pairs"]["device__tflm_golden"]
    assert pair["exact_match"] == 1.0 and pair["time_step_agreement"] == 1.0
    dev = summary["metrics"]["device"]
    assert len(dev["iou"]) == 3 and dev["time_steps"] == 40 * 64 and 0 <= dev["mean_iou"] <= 1
    assert dev["accuracy"] == summary["metrics"]["tflm_golden"]["accuracy"]
    assert report["metrics"]["tflm"]["accuracy"] == dev["accuracy"]  # the same 40 frames
    assert summary["verdict"]["passed"] and summary["checks"]["device_matches_golden"]

    # demo on the host TFLM: consecutive frames, time-step accuracy per frame, strips over time
    params = load_params(data={**cfg, "demo_size": 8, "display_report": False}).params
    result = demo(params, backend="pc")
    shown = json.loads((params.demo_dir / "demo.json").read_text())
    assert shown["task"]["name"] == "segmentation" and len(shown["frames"]) == 8
    assert 0 <= result.accuracy <= 1 and result.accuracy == shown["metrics"]["accuracy"]
    assert all("time_step_accuracy" in f for f in shown["frames"])
    assert (params.demo_dir / "demo.png").read_bytes()[:4] == b"\x89PNG"


def test_denoise_runs_on_the_virtual_evb(den_job: dict[str, Path], tmp_path: Path) -> None:
    cfg = task_config(
        den_job["data"], den_job["model"], tmp_path / "job", test_size=40, test_metric_threshold=0.02
    )
    report, summary = _run(cfg, tmp_path)
    assert report["task"]["name"] == "denoise" and report["task"]["reason"].startswith("inferred")
    dev, flt = summary["metrics"]["device"], summary["metrics"]["keras_float"]
    assert summary["pairs"]["device__tflm_golden"]["exact_match"] == 1.0
    assert {"mse", "rmse", "mae", "cosine", "snr_improvement_db"} <= set(dev)
    assert summary["verdict"]["metric"] == "mse"
    assert summary["verdict"]["drop"] == pytest.approx(dev["mse"] - flt["mse"])

    params = load_params(data={**cfg, "demo_size": 6, "display_report": False}).params
    result = demo(params, backend="pc")
    shown = json.loads((params.demo_dir / "demo.json").read_text())
    assert shown["task"]["name"] == "denoise" and {"mse", "snr_improvement_db"} <= set(shown["frames"][0])
    assert result.accuracy == shown["metrics"]["snr_improvement_db"]

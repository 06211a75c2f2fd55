"""`hkdeploy export` through the CLI: threshold failure exits 1 with everything written; reproducibility."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def test_threshold_failure_exits_1_after_writing_everything(exported_demo: Any, tmp_path: Path) -> None:
    from hkdeploy.export import ARTIFACTS

    drop = exported_demo.report["verdict"]["drop"]
    assert drop > 0, "the demo must lose a little accuracy in int8 for this test"
    exe = Path(sys.executable).parent / "hkdeploy"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [
            str(exe),
            "export",
            "-c",
            str(REPO / "configs" / "demo.json"),
            "--job-dir",
            str(tmp_path),
            "--set",
            f"test_metric_threshold={drop / 2}",
            "--set",
            "quantization.debug=true",
            "--set",
            f"tflm_file={tmp_path / 'app' / 'model_buffer.h'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 1, proc.stderr
    assert "error: accuracy drops" in proc.stderr and "Hint:" in proc.stderr
    for name in ARTIFACTS:
        assert (tmp_path / "export" / name).is_file(), name
    report = json.loads((tmp_path / "export" / "export_report.json").read_text())
    assert report["verdict"]["passed"] is False and report["verdict"]["threshold"] == drop / 2
    assert json.loads((tmp_path / "config.json").read_text())["command"] == "export"
    copied = tmp_path / "app" / "model_buffer.h"  # tflm_file: the header is copied for the user's app
    assert copied.read_bytes() == (tmp_path / "export" / "model_buffer.h").read_bytes()
    rows = report["quantization_debug"]  # quantization.debug: TF's debugger, one row per quantized tensor
    assert rows and {"op", "tensor", "scale", "rmse_in_scales"} <= set(rows[0])
    assert ">Per-layer quantization error</h2>" in (tmp_path / "export" / "report.html").read_text()
    # Reproducible: a second run from scratch writes byte-identical model and headers.
    for name in ("model.tflite", "model_buffer.h", "model_ops.h", "model_config.h"):
        assert (tmp_path / "export" / name).read_bytes() == (exported_demo.export_dir / name).read_bytes(), (
            name
        )


def test_bad_model_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"not a zip")
    exe = Path(sys.executable).parent / "hkdeploy"
    proc = subprocess.run(
        [
            str(exe),
            "export",
            "-c",
            str(REPO / "configs" / "demo.json"),
            "--job-dir",
            str(tmp_path / "job"),
            "--set",
            f"model_file={bad}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "Hint:"))]
    assert lines[0].startswith(f"error: model_file {bad} is not a Keras .keras archive")
    assert lines[1].startswith("Hint:")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "job" / "export" / "model_buffer.h").exists()

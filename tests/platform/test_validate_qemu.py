"""``hkdeploy validate`` / ``run`` of the demo on the emulated boards with the real engine (upstream
TFLM + CMSIS-NN from source): bit-exact with the golden, a per-layer profile of every operator, and
the per-layer diff that names the layer where CMSIS-NN's Helium kernels depart from the reference.

Opt-in: needs the upstream trees (HK_TFLM_ROOT / HK_TFLM_DOWNLOADS, docs/tflm.md), arm-none-eabi-g++
and qemu-system-arm; the library builds are cached in ~/.cache/hkdeploy/tflm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.config import load_params
from hkdeploy.errors import CheckFailed
from hkdeploy.validate import validate
from tests.platform.qemu_support import needs_arm_cxx_and_qemu, needs_tflm_trees

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "demo.json"
pytestmark = [pytest.mark.slow, needs_tflm_trees, needs_arm_cxx_and_qemu]


def _job(exported_demo: Any, tmp_path: Path) -> Path:
    job = tmp_path / "job"
    shutil.copytree(exported_demo.export_dir, job / "export")
    return job


def _layers(job: Path) -> list[dict[str, Any]]:
    return json.loads((job / "export" / "export_report.json").read_text())["model"]["layers"]


def _check_profile(summary: dict[str, Any], layers: list[dict[str, Any]]) -> None:
    prof = summary["profile"]
    assert prof["available"] and prof["problems"] == [], prof
    assert prof["op_count"] == prof["recorded"] == len(layers)  # PROFILE layer count = the model's op count
    assert [r["op"] for r in prof["ops"]] == [x["op"] for x in layers]
    assert [r["macs"] for r in prof["ops"]] == [x["macs"] for x in layers]
    assert 0 < prof["cycles_ops"] <= prof["cycles_total"]
    # the profiled Invoke() costs what an unprofiled one does, give or take the hooks' counter reads
    median = summary["latency"]["cycles"]["median"]
    assert abs(prof["cycles_total"] - median) <= 0.01 * median
    assert summary["latency"]["counter"]["unit"] == "instructions"


def test_run_on_qemu_m4_with_cmsis_nn_is_bit_exact_with_a_profile(tmp_path: Path) -> None:
    """The issue's command, as a user types it."""
    job = tmp_path / "job"
    exe = Path(sys.executable).parent / "hkdeploy"
    res = subprocess.run(
        [str(exe), "run", "-c", str(CONFIG), "--board", "qemu_m4", "--job-dir", str(job)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((job / "validate" / "summary.json").read_text())
    assert summary["frames"] == 200 and summary["pairs"]["device__tflm_golden"]["exact_match"] == 1.0
    _check_profile(summary, _layers(job))
    assert "per-layer profile: 12 operators" in (res.stdout + res.stderr).replace("\n", " ")


@pytest.mark.parametrize(("board", "kernels"), [("qemu_m4", "reference"), ("qemu_m55", "reference")])
def test_validate_with_reference_kernels_is_bit_exact(
    board: str, kernels: str, exported_demo: Any, tmp_path: Path
) -> None:
    job = _job(exported_demo, tmp_path)
    params = load_params(CONFIG, [f"firmware.tflm_kernels={kernels}"], job_dir=job).params
    summary = validate(params, board=board, show_progress=False).summary
    assert summary["pairs"]["device__tflm_golden"]["exact_match"] == 1.0 and summary["layer_diff"] is None
    _check_profile(summary, _layers(job))


def test_qemu_m55_helium_mismatch_names_the_layer(exported_demo: Any, tmp_path: Path) -> None:
    """CMSIS-NN's Helium kernels (4ab83cc) differ from the reference at the padded right edge of the
    last CONV_2D: validate fails, and the per-layer diff says which operator and where."""
    job = _job(exported_demo, tmp_path)
    params = load_params(CONFIG, ["firmware.tflm_kernels=cmsis_nn"], job_dir=job).params
    with pytest.raises(CheckFailed) as failed:
        validate(params, board="qemu_m55", show_progress=False)
    assert "first layer that differs" in (failed.value.hint or "")
    summary = json.loads((job / "validate" / "summary.json").read_text())
    exact = summary["pairs"]["device__tflm_golden"]["exact_match"]
    assert exact < 1.0
    diff = summary["layer_diff"]
    with np.load(job / "export" / "test_data.npz") as d:
        golden = d["tflm"].reshape(len(d["tflm"]), -1)
    results = [json.loads(line) for line in (job / "validate" / "results.jsonl").read_text().splitlines()]
    first_bad = min(r["sample"] for r in results if r["output"] != golden[r["sample"]].tolist())
    assert diff["available"] and diff["frame"] == first_bad
    layers = _layers(job)
    first = diff["first_layer"]
    conv_ops = [x["index"] for x in layers if x["op"] == "CONV_2D"]
    assert (
        first["op"] == "CONV_2D" and first["index"] == conv_ops[-1] and diff["checked"] == first["index"] + 1
    )
    shape = layers[first["index"]]["output_shape"]
    assert first["where"][2] == [shape[2] - 1, shape[2] - 1], "only the right-edge column differs"
    html = (job / "validate" / "report.html").read_text()
    assert ">Per-layer diff</h2>" in html and f"operator {first['index']} CONV_2D" in html

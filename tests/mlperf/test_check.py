"""`hkdeploy build --app mlperf` + `hkdeploy mlperf check` on the virtual EVB with the demo export."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from hkdeploy.cli import main
from hkdeploy.config import load_params
from hkdeploy.errors import CheckFailed
from hkdeploy.mlperf.firmware import build_host_dut
from hkdeploy.platforms.host_process import HostPort

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.json"


@pytest.fixture
def job(exported_demo: Any, tmp_path: Path) -> Path:
    shutil.copytree(exported_demo.export_dir, tmp_path / "job" / "export")
    return tmp_path / "job"


def test_cli_build_and_check_pass_on_the_virtual_evb(job: Path) -> None:
    common = [
        "-c",
        str(DEMO),
        "--job-dir",
        str(job),
        "--set",
        "mlperf.model_id=ic01",
        "--set",
        "mlperf.check_size=8",
    ]
    assert main(["build", "--app", "mlperf", *common]) == 0
    manifest = json.loads((job / "firmware" / "sim-mlperf" / "build_manifest.json").read_text())
    assert manifest["app"] == "mlperf" and manifest["mlperf"]["model_id"] == "ic01"
    assert main(["mlperf", "check", *common, "--iterations", "5", "--warmups", "1"]) == 0
    summary = json.loads((job / "mlperf" / "check.json").read_text())
    assert summary["name"] == "hkdeploy-ic01" and summary["model_id"] == "ic01"
    assert summary["inputs"] == 8 and summary["equal"] == 8 and summary["problems"] == []
    assert summary["performance"]["elapsed_us"] > 0
    transcript = (job / "mlperf" / "check_transcript.txt").read_text().splitlines()
    assert "tx name%" in transcript and "rx m-model-[ic01]" in transcript
    assert transcript.count("tx db load 1250%") == 8
    # the link firmware's build is not touched by the DUT build
    assert not (job / "firmware" / "sim" / "build_manifest.json").exists()


def test_check_fails_on_a_dut_with_another_name(job: Path, tmp_path: Path) -> None:
    from hkdeploy.mlperf.check import check

    binary = build_host_dut(job / "export", tmp_path / "other", name="someone-else", model_id="kws01")
    params = load_params(DEMO, ["mlperf.model_id=kws01"], job_dir=job).params
    with HostPort(binary, log_path=tmp_path / "other.log") as hp:
        with pytest.raises(CheckFailed, match="name 'someone-else', the config says 'hkdeploy-kws01'"):
            check(params, port=hp.url, count=2)
    summary = json.loads((job / "mlperf" / "check.json").read_text())
    assert summary["equal"] == 2  # the results themselves were right


@pytest.mark.skipif(
    not os.environ.get("HK_TFLM_ROOT") or shutil.which("qemu-system-arm") is None,
    reason="the emulated Cortex-M builds upstream TFLM from source: set HK_TFLM_ROOT=<tflite-micro> and "
    "HK_TFLM_DOWNLOADS=<its downloads/> (docs/tflm.md) and apt-get install qemu-system-arm gcc-arm-none-eabi",
)
def test_build_and_check_pass_on_the_emulated_cortex_m4(job: Path) -> None:
    common = ["-c", str(DEMO), "--job-dir", str(job), "--set", "mlperf.check_size=5"]
    assert main(["build", "--app", "mlperf", "--board", "qemu_m4", *common]) == 0
    assert (
        main(["mlperf", "check", "--board", "qemu_m4", *common, "--iterations", "2", "--warmups", "0"]) == 0
    )
    summary = json.loads((job / "mlperf" / "check.json").read_text())
    assert summary["equal"] == 5 and summary["problems"] == []

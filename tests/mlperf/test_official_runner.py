"""Opt-in: the official MLCommons Tiny runner (mlcommons/tiny benchmark/runner) against the virtual
EVB's DUT, in accuracy and performance mode, with the dataset and devices files hkdeploy writes.

The runner finds DUTs only by USB VID/PID (pyserial's ``list_ports``), which a pty has not; the
launcher below therefore lists the pty as a USB port with the devices file's ids (and no USB-only
power monitors) and runs the runner's ``main.py`` unchanged. Needs a checkout of the runner and a
Python with its requirements:

    git clone https://github.com/mlcommons/tiny && python3 -m venv /tmp/mlperf-venv &&
    /tmp/mlperf-venv/bin/pip install numpy pyyaml scikit-learn matplotlib pyusb pyserial
    MLPERF_TINY_RUNNER=tiny/benchmark/runner MLPERF_TINY_PYTHON=/tmp/mlperf-venv/bin/python pytest tests/mlperf
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.config import load_params
from hkdeploy.mlperf.build import build_mlperf
from hkdeploy.mlperf.dataset import write_dataset
from hkdeploy.mlperf.devices import write_devices
from hkdeploy.platforms.host_process import HostPort

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(os.environ.get("MLPERF_TINY_RUNNER", "/nonexistent"))
PYTHON = os.environ.get("MLPERF_TINY_PYTHON", "")
VID, PID = 0x1366, 0x1015  # any ids: the launcher lists the pty with the devices file's

pytestmark = pytest.mark.skipif(
    not (RUNNER / "main.py").is_file() or not PYTHON,
    reason="set MLPERF_TINY_RUNNER=<mlcommons/tiny>/benchmark/runner and MLPERF_TINY_PYTHON=<python with numpy "
    "pyyaml scikit-learn matplotlib pyusb pyserial> (see this module's doc)",
)

# Lists the pty as a USB serial port and runs the runner's main.py as `python main.py ...` would.
LAUNCHER = """
import runpy, sys
import serial.tools.list_ports as lp
import usb.core
class Port:
    def __init__(self, device, vid, pid):
        self.device, self.vid, self.pid, self.description = device, vid, pid, "hkdeploy virtual EVB"
pty, vid, pid, runner = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lp.comports = lambda include_links=False: [Port(pty, vid, pid)]
usb.core.find = lambda *a, **k: iter(())
sys.path.insert(0, runner)
sys.argv = ["main.py", *sys.argv[5:]]
runpy.run_path(runner + "/main.py", run_name="__main__")
"""


def _run_runner(url: str, work: Path, *args: str, timeout: float = 900) -> str:
    proc = subprocess.run(
        [PYTHON, "-c", LAUNCHER, url, str(VID), str(PID), str(RUNNER.resolve()), *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    sessions = sorted((work / "sessions").glob("*/results.txt"))
    results = sessions[-1].read_text() if sessions else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results + proc.stdout


@pytest.mark.slow
def test_official_runner_accuracy_and_performance(exported_demo: Any, tmp_path: Path) -> None:
    job = tmp_path / "job"
    shutil.copytree(exported_demo.export_dir, job / "export")
    params = load_params(REPO / "configs" / "demo.json", ["mlperf.model_id=kws01"], job_dir=job).params
    binary = build_mlperf(params, "sim").binary
    datasets = write_dataset(params, tmp_path / "datasets").folder.parent
    devices = write_devices(tmp_path / "devices.yaml", params.mlperf.dut_name(), "kws01", VID, PID)
    work = tmp_path / "work"
    work.mkdir()
    with HostPort(binary, log_path=tmp_path / "dut.log") as hp:
        acc = _run_runner(hp.url, work, f"--dataset_path={datasets}", f"--device_list={devices}",
                          f"--test_script={RUNNER / 'tests_accuracy.yaml'}", "--mode=a")  # fmt: skip
        perf = _run_runner(hp.url, work, f"--dataset_path={datasets}", f"--device_list={devices}",
                           f"--test_script={RUNNER / 'tests_performance.yaml'}", "--mode=p")  # fmt: skip
    print("".join(ln + "\n" for ln in (acc + perf).splitlines() if "ulp-mlperf:" in ln or "Runtime" in ln))
    # the runner's top-1 from the DUT's printed results = the TFLM golden's accuracy in the export report
    m = re.search(r"ulp-mlperf: Top 1% = ([\d.]+)", acc)
    assert m, acc[-2000:]
    top1 = float(m.group(1))
    with np.load(job / "export" / "test_data.npz") as d:
        want = 100 * float(np.mean(np.argmax(d["tflm"], axis=1) == d["y"]))
    assert abs(top1 - want) < 0.051  # the runner prints one decimal
    assert re.search(r"Median throughput is\s+[\d.]+ inf\./sec\.", perf) or "ERROR 2" in perf, perf[-2000:]

"""The link, the firmware build, flash, doctor, demo, validate, mlperf and the reports never import TensorFlow
(seconds of start-up on every command that talks to a board)."""

from __future__ import annotations

import subprocess
import sys

import pytest

LIGHT_MODULES = [
    "hkdeploy.link.client",
    "hkdeploy.platforms.host_process",
    "hkdeploy.platforms",
    "hkdeploy.contracts",
    "hkdeploy.link.pipeline",
    "hkdeploy.lab.coordinator",
    "hkdeploy.lab.places",
    "hkdeploy.lab.flash",
    "hkdeploy.platforms.qemu_build",
    "hkdeploy.platforms.qemu_process",
    "hkdeploy.platforms.arena32",
    "hkdeploy.platforms.tflm_lib",
    "hkdeploy.link.counter",
    "hkdeploy.firmware.build",
    "hkdeploy.flash",
    "hkdeploy.doctor",
    "hkdeploy.platforms.tflm_lib",
    "hkdeploy.demo",
    "hkdeploy.validate",
    "hkdeploy.run",
    "hkdeploy.report.html",
    "hkdeploy.cli",
    "hkdeploy.mlperf.build",
    "hkdeploy.mlperf.check",
    "hkdeploy.mlperf.dataset",
    "hkdeploy.mlperf.devices",
]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_module_does_not_import_tensorflow(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"

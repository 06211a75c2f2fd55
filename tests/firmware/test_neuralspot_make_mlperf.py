"""The neuralSPOT app in MLPerf DUT mode (HK_APP=mlperf) without the SDK: the variables neuralSPOT's
make receives, the UART-only rule, the energy-mode pin rule, and the golden ``make -n`` chain. A fake
SDK tree (a test double) records what it is given. The real build is checked by hand (docs/mlperf.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "firmware" / "platform" / "neuralspot"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HK_", "NEURALSPOT", "PLATFORM"))}
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(APP / "Makefile"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def fake_sdk(tmp_path: Path) -> Path:
    root = tmp_path / "neuralSPOT"
    (root / "make").mkdir(parents=True)
    (root / "make" / "neuralspot_config.mk").write_text("# fake\n")
    (root / "Makefile").write_text(
        "all:\n"
        "\t@echo 'HK_LINK=$(HK_LINK) HK_APP=$(HK_APP) HK_DUT_NAME=$(HK_DUT_NAME) HK_DUT_MODEL_ID=$(HK_DUT_MODEL_ID) "
        "HK_DUT_ENERGY=$(HK_DUT_ENERGY) HK_DUT_BAUD=$(HK_DUT_BAUD) HK_DUT_TS_PIN=$(HK_DUT_TS_PIN)' > vars.txt\n"
        "\t@mkdir -p build/$(PLATFORM)/arm-none-eabi/$(ADPATH)/$(EXAMPLE)\n"
        "\t@printf axf > build/$(PLATFORM)/arm-none-eabi/$(ADPATH)/$(EXAMPLE)/hkdeploy_fw.axf\n"
        "\t@printf bin > build/$(PLATFORM)/arm-none-eabi/$(ADPATH)/$(EXAMPLE)/hkdeploy_fw.bin\n"
    )
    return root


@pytest.fixture
def common(fake_sdk: Path, tmp_path: Path) -> list[str]:
    export = tmp_path / "export"
    export.mkdir()
    (export / "model_config.h").write_text("/* */\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "arm-none-eabi-size").write_text("#!/bin/sh\necho size $1\n")
    (tools / "arm-none-eabi-size").chmod(0o755)
    return [f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo4p_evb", f"EXPORT_DIR={export}",
            f"FW_BUILD_DIR={tmp_path / 'fw'}", f"TOOLCHAIN_DIR={tools}"]  # fmt: skip


def test_dut_on_apollo4_defaults_to_the_uart_and_115200(fake_sdk: Path, common: list[str]) -> None:
    res = _make(*common, "HK_APP=mlperf", "HK_DUT_NAME=hkdeploy-kws01", "HK_DUT_MODEL_ID=kws01")
    assert res.returncode == 0, res.stderr
    assert (fake_sdk / "vars.txt").read_text().split() == [
        "HK_LINK=uart", "HK_APP=mlperf", "HK_DUT_NAME=hkdeploy-kws01", "HK_DUT_MODEL_ID=kws01", "HK_DUT_ENERGY=0",
        "HK_DUT_BAUD=115200", "HK_DUT_TS_PIN=",
    ]  # fmt: skip


def test_dut_baud_921600_for_ad01_and_9600_in_energy_mode(fake_sdk: Path, common: list[str]) -> None:
    assert _make(*common, "HK_APP=mlperf", "HK_DUT_MODEL_ID=ad01").returncode == 0
    assert "HK_DUT_BAUD=921600" in (fake_sdk / "vars.txt").read_text().split()
    res = _make(*common, "HK_APP=mlperf", "HK_DUT_MODEL_ID=ad01", "HK_DUT_ENERGY=1", "HK_DUT_TS_PIN=22")
    assert res.returncode == 0, res.stderr
    assert {"HK_DUT_BAUD=9600", "HK_DUT_TS_PIN=22", "HK_DUT_ENERGY=1"} <= set(
        (fake_sdk / "vars.txt").read_text().split()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["HK_APP=mlperf", "HK_LINK=usb"], "the MLPerf DUT talks over the UART. Hint: HK_LINK=uart"),
        (["HK_APP=mlperf", "HK_DUT_ENERGY=1"], "energy mode needs the timestamp GPIO. Hint: HK_DUT_TS_PIN="),
        (["HK_APP=bench"], "HK_APP=bench is not an app. Hint: HK_APP=link"),
    ],
)
def test_refusals_name_the_fix(fake_sdk: Path, common: list[str], args: list[str], message: str) -> None:
    res = _make(*common, *args)
    assert res.returncode != 0 and message in res.stderr
    assert not (fake_sdk / "vars.txt").exists()


def test_link_app_passes_no_dut_variables(fake_sdk: Path, common: list[str]) -> None:
    assert _make(*common).returncode == 0
    assert (fake_sdk / "vars.txt").read_text().split() == ["HK_LINK=usb", "HK_APP=", "HK_DUT_NAME=",
                                                          "HK_DUT_MODEL_ID=", "HK_DUT_ENERGY=", "HK_DUT_BAUD=",
                                                          "HK_DUT_TS_PIN="]  # fmt: skip


def test_make_n_golden_command_line(fake_sdk: Path) -> None:
    res = _make("-n", f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo3p_evb", "EXPORT_DIR=/e", "HK_BUILD_ID=b1",
                "HK_APP=mlperf", "HK_DUT_NAME=hkdeploy-vww01", "HK_DUT_MODEL_ID=vww01")  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = [" ".join(line.split()) for line in res.stdout.replace("\\\n", " ").splitlines()]
    assert (
        f"make -C {fake_sdk} PLATFORM=apollo3p_evb AUTODEPLOY=1 ADPATH={APP.parent} EXAMPLE=neuralspot "
        "HK_EXPORT_DIR=/e HK_BOARD_NAME=apollo3p_evb HK_BUILD_ID=b1 HK_LINK=uart HK_CPU_HZ=96000000 HK_APP=mlperf "
        "HK_DUT_NAME=hkdeploy-vww01 HK_DUT_MODEL_ID=vww01 HK_DUT_ENERGY=0 HK_DUT_BAUD=115200"
    ) in lines
    assert not (fake_sdk / "vars.txt").exists()

"""The neuralSPOT app's make wrapper (firmware/platform/neuralspot/Makefile) without the SDK.

CI has no neuralSPOT tree, so the real build is checked by hand (docs/firmware.md). Here a fake tree
(a test double: its Makefile records the variables it is given and writes the outputs where
neuralSPOT would) checks the exact invocation of neuralSPOT's make, where the binaries are picked
up, and the errors for missing inputs.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "firmware" / "platform" / "neuralspot"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _make(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(APP / "Makefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    d = tmp_path / "export"
    d.mkdir()
    for name in ("model_buffer.h", "model_ops.h", "model_config.h"):
        (d / name).write_text(f"/* {name} */\n")
    return d


@pytest.fixture
def fake_sdk(tmp_path: Path) -> Path:
    root = tmp_path / "neuralSPOT"
    (root / "make").mkdir(parents=True)
    (root / "make" / "neuralspot_config.mk").write_text("# fake\n")
    # records its variables; writes the binaries at neuralSPOT's BINDIR/<ADPATH>/<EXAMPLE>/
    (root / "Makefile").write_text(
        "all:\n"
        "\t@echo 'PLATFORM=$(PLATFORM) AS_VERSION=$(AS_VERSION) AUTODEPLOY=$(AUTODEPLOY) ADPATH=$(ADPATH) "
        "EXAMPLE=$(EXAMPLE) HK_EXPORT_DIR=$(HK_EXPORT_DIR) HK_BOARD_NAME=$(HK_BOARD_NAME) "
        "HK_BUILD_ID=$(HK_BUILD_ID) HK_LINK=$(HK_LINK) HK_CPU_HZ=$(HK_CPU_HZ)' > vars.txt\n"
        "\t@mkdir -p build/$(PLATFORM)/arm-none-eabi/$(ADPATH)/$(EXAMPLE)\n"
        "\t@printf axf > build/$(PLATFORM)/arm-none-eabi/$(ADPATH)/$(EXAMPLE)/hkdeploy_fw.axf\n"
        "\t@printf bin > build/$(PLATFORM)/arm-none-eabi/$(ADPATH)/$(EXAMPLE)/hkdeploy_fw.bin\n"
    )
    return root


def test_invokes_neuralspot_make_with_the_app_and_collects_the_binaries(
    fake_sdk: Path, export_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fw"
    res = _make(
        f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo4p_evb", "AS_VERSION=R4.4.1", f"EXPORT_DIR={export_dir}",
        f"FW_BUILD_DIR={out}", "HK_BUILD_ID=hk-123", "HK_BOARD_NAME=apollo4p_evb", "HK_CPU_HZ=192000000",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (fake_sdk / "vars.txt").read_text().split() == [
        "PLATFORM=apollo4p_evb", "AS_VERSION=R4.4.1", "AUTODEPLOY=1", f"ADPATH={APP.parent}", "EXAMPLE=neuralspot",
        f"HK_EXPORT_DIR={export_dir}", "HK_BOARD_NAME=apollo4p_evb", "HK_BUILD_ID=hk-123", "HK_LINK=usb",
        "HK_CPU_HZ=192000000",
    ]  # fmt: skip
    assert (out / "hkdeploy_fw.axf").read_text() == "axf" and (out / "hkdeploy_fw.bin").read_text() == "bin"
    assert f"firmware: {out}/hkdeploy_fw.bin" in res.stdout


def test_binaries_of_another_platform_are_not_taken(fake_sdk: Path, export_dir: Path, tmp_path: Path) -> None:
    other = fake_sdk / "build" / "apollo3p_evb" / "arm-none-eabi" / str(APP).lstrip("/")
    other.mkdir(parents=True)
    (other / "hkdeploy_fw.axf").write_text("wrong")
    broken = fake_sdk / "Makefile"
    broken.write_text("all:\n\t@true\n")  # a build that produced nothing for apollo4p_evb
    res = _make(f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo4p_evb", f"EXPORT_DIR={export_dir}",
                f"FW_BUILD_DIR={tmp_path / 'fw'}")  # fmt: skip
    assert res.returncode != 0 and "hkdeploy_fw.axf not found under" in res.stderr
    assert not (tmp_path / "fw" / "hkdeploy_fw.axf").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["PLATFORM=apollo4p_evb"],
            "NEURALSPOT_ROOT is not set. Hint: git clone https://github.com/AmbiqAI/neuralSPOT",
        ),
        (["NEURALSPOT_ROOT=/nonexistent", "PLATFORM=apollo4p_evb"], "/nonexistent is not a neuralSPOT tree"),
        (["NEURALSPOT_ROOT={sdk}"], "PLATFORM is not set. Hint: PLATFORM=apollo4p_evb"),
        (
            ["NEURALSPOT_ROOT={sdk}", "PLATFORM=apollo4p_evb", "EXPORT_DIR=/nonexistent"],
            "holds no model_config.h",
        ),
    ],
)
def test_missing_inputs_are_named_with_a_hint(fake_sdk: Path, args: list[str], message: str) -> None:
    res = _make(*[a.format(sdk=fake_sdk) for a in args])
    assert res.returncode != 0 and message in res.stderr
    assert not (fake_sdk / "vars.txt").exists()


def test_top_level_make_firmware_forwards_to_the_app(
    fake_sdk: Path, export_dir: Path, tmp_path: Path
) -> None:
    res = subprocess.run(
        ["make", "--no-print-directory", "firmware", f"NEURALSPOT_ROOT={fake_sdk}", "PLATFORM=apollo3p_evb",
         "AS_VERSION=R3.1.1", "HK_LINK=uart", f"EXPORT_DIR={export_dir}", f"FW_BUILD_DIR={tmp_path / 'fw'}"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "HK_LINK=uart" in (fake_sdk / "vars.txt").read_text()
    assert (tmp_path / "fw" / "hkdeploy_fw.bin").is_file()

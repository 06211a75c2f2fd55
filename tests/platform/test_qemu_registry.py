"""The qemu platform in the registry: boards listed, doctor's table, and a build without the upstream
TFLM trees stopping with exit 4 and the hint to provide them (no tools needed for these)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hkdeploy.cli import main
from tests.doubles.fake_export import write_fake_export

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.json"


@pytest.fixture
def no_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HK_TFLM_ROOT", raising=False)
    monkeypatch.delenv("HK_TFLM_DOWNLOADS", raising=False)


def test_boards_lists_the_emulated_cortex_m(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    assert "qemu_m4" in out and "qemu_m55" in out


def test_doctor_for_qemu_says_what_is_there_and_what_is_missing(
    no_trees: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "-c", str(DEMO), "--job-dir", str(tmp_path), "--board", "qemu_m4"])
    captured = capsys.readouterr()
    table = " ".join(captured.out.split())
    assert "doctor: qemu_m4" in table and "QEMU" in table and "TFLM source: tflm" in table
    assert "TFLM licence" in table
    assert code == 4 and "missing for qemu_m4" in captured.err  # the trees are not configured


@pytest.mark.parametrize("board", ["qemu_m4", "qemu_m55"])
def test_build_without_tflm_sources_is_exit_4_with_the_hint(
    board: str, no_trees: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("arm-none-eabi-g++") is None:
        pytest.skip(
            "needs the Arm toolchain to get past it: apt-get install gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib"
        )
    job = tmp_path / "job"
    write_fake_export(job / "export")
    code = main(["build", "-c", str(DEMO), "--job-dir", str(job), "--board", board])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 4, err
    assert f"cannot build the TFLM engine for {board}" in err and "HK_TFLM_ROOT" in err
    assert "licensed for Ambiq CPUs only" in err
    assert not (job / "firmware" / board / "project").exists()  # nothing rendered before the check


def test_dry_run_prints_the_real_compile_and_link_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_tflm_lib_unit import make_fake_trees

    tflm, downloads = make_fake_trees(tmp_path / "trees")
    monkeypatch.setenv("HK_TFLM_ROOT", str(tflm))
    monkeypatch.setenv("HK_TFLM_DOWNLOADS", str(downloads))
    job = tmp_path / "job"
    write_fake_export(job / "export")
    code = main(["build", "-c", str(DEMO), "--job-dir", str(job), "--board", "qemu_m4", "--dry-run"])
    out = capsys.readouterr()
    lines = [ln for ln in (out.out + out.err).splitlines() if ln.startswith("(dry run)")]
    assert code == 0
    assert "upstream TFLM for cortex-m4" in lines[0]
    compiles = [ln for ln in lines if " -c " in ln]
    assert any("hk_engine_tflm.cc" in ln and f"-isystem {tflm}" in ln for ln in compiles)
    assert any("hk_link.c" in ln for ln in compiles)  # the link core, not the DUT front end
    link = lines[-1]
    assert "-mcpu=cortex-m4" in link and "libtflm.a" in link and "-lm" in link and "hk_qemu.elf" in link
    assert not (job / "firmware" / "qemu_m4" / "hk_qemu.elf").exists()  # nothing built

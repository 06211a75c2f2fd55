"""hkdeploy build / flash / doctor without hardware.

The virtual EVB build is real (gcc). A real board's build runs against a fake neuralSPOT tree with
test-double tools (``make``, ``arm-none-eabi-gcc``, ``arm-none-eabi-size``, each a shell script that
records its arguments): the exact make invocation, the manifest, the size check and the stale-binary
refusal are what is tested; the real neuralSPOT build is checked by hand (docs/firmware.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hkdeploy.boards import get_board
from hkdeploy.cli import main
from hkdeploy.config import load_params
from hkdeploy.config.params import DeployParams
from hkdeploy.errors import CheckFailed, ToolError, UserError
from hkdeploy.firmware.build import MANIFEST, build, current_build, ensure_built, stale_reasons
from hkdeploy.flash import flash

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "demo.json"


def _params(job: Path, sdk: Path | None = None, **extra: Any) -> DeployParams:
    overrides = [f"firmware.neuralspot_root={sdk}"] if sdk else []
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return load_params(CONFIG, overrides, job_dir=job).params


def test_board_build_runs_neuralspot_make_and_records_a_manifest(
    job: Path, fake_sdk: dict[str, Path]
) -> None:
    params = _params(job, fake_sdk["sdk"], backend="evb")
    result = build(params, "apollo4p_evb")
    out = job / "firmware" / "apollo4p_evb"
    project = out / "project"
    manifest = json.loads((out / MANIFEST).read_text())
    assert (fake_sdk["tools"] / "make.args").read_text().split() == [
        "-C", str(project / "platform" / "neuralspot"), "-j2", f"NEURALSPOT_ROOT={fake_sdk['sdk'].resolve()}",
        "PLATFORM=apollo4p_evb", "AS_VERSION=R4.4.1", f"EXPORT_DIR={project / 'model'}",
        f"FW_BUILD_DIR={out / 'build'}", f"HK_BUILD_ID={manifest['build_id']}", "HK_BOARD_NAME=apollo4p_evb",
        "HK_LINK=usb", "HK_CPU_HZ=192000000",
    ]  # fmt: skip
    report = json.loads((job / "export" / "export_report.json").read_text())
    assert manifest["model_sha256"] == report["model"]["sha256"]
    assert manifest["neuralspot_revision"] == str(fake_sdk["rev"])
    assert manifest["toolchain"] == "arm-none-eabi-gcc (fake) 12.2.1"
    assert manifest["sizes"] == {"text": 120000, "data": 2000, "bss": 40000}
    assert manifest["build_id"] == "hk-" + manifest["sources_sha256"][:12]
    assert result.binary == out / "build" / "hkdeploy_fw.bin"
    for header in ("model_buffer.h", "model_ops.h", "model_config.h"):
        assert (project / "model" / header).read_bytes() == (job / "export" / header).read_bytes()
    assert (project / "core" / "hk_link.c").is_file() and not (project / "platform" / "host").exists()
    assert stale_reasons(params, get_board("apollo4p_evb")) == []


def test_flash_refuses_a_stale_binary_unless_forced(
    job: Path, fake_sdk: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    params = _params(job, fake_sdk["sdk"], backend="evb")
    with pytest.raises(UserError, match="no build for apollo4p_evb"):
        flash(params, "apollo4p_evb", dry_run=True)
    build(params, "apollo4p_evb")
    flash(params, "apollo4p_evb", dry_run=True)
    line = " ".join(capsys.readouterr().err.split())
    assert (
        "(dry run) JLinkExe -nogui 1 -device AMAP42KK-KBR -if SWD -speed 4000 -autoconnect 1 -CommandFile"
        in line
    )
    # a new export (here: a changed model header and hash) makes the build stale
    report = json.loads((job / "export" / "export_report.json").read_text())
    report["model"]["sha256"] = "0" * 64
    (job / "export" / "export_report.json").write_text(json.dumps(report))
    with (job / "export" / "model_ops.h").open("a") as fh:
        fh.write("/* changed */\n")
    with pytest.raises(
        UserError, match=r"another model than the current export.*sources or model headers changed"
    ) as exc:
        flash(params, "apollo4p_evb", dry_run=True)
    assert "hkdeploy build" in (exc.value.hint or "") and "--force" in (exc.value.hint or "")
    assert flash(params, "apollo4p_evb", dry_run=True, force=True).runner == "jlink"
    # a binary changed after the build is stale too, and a missing one cannot be forced
    build(params, "apollo4p_evb")
    binary = current_build(params, get_board("apollo4p_evb")).binary
    binary.write_bytes(b"tampered")
    assert stale_reasons(params, get_board("apollo4p_evb")) == ["hkdeploy_fw.bin changed after the build"]
    binary.unlink()
    with pytest.raises(UserError, match="missing"):
        flash(params, "apollo4p_evb", dry_run=True, force=True)


def test_firmware_too_big_for_the_board_fails_the_build(
    job: Path, fake_sdk: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_BSS", "900000")  # apollo3p_evb has 768 KB of SRAM
    with pytest.raises(CheckFailed, match="does not fit apollo3p_evb"):
        build(_params(job, fake_sdk["sdk"]), "apollo3p_evb")
    assert not (job / "firmware" / "apollo3p_evb" / MANIFEST).exists()
    args = (fake_sdk["tools"] / "make.args").read_text().split()
    assert "PLATFORM=apollo3p_evb" in args and "AS_VERSION=R3.1.1" in args and "HK_LINK=uart" in args


def test_missing_sdk_and_toolchain_exit_4_with_the_install_hint(
    job: Path, fake_sdk: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["build", "-c", str(CONFIG), "--job-dir", str(job), "--board", "apollo4p_evb"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 4 and "neuralSPOT SDK is not configured" in err and "NEURALSPOT_ROOT" in err
    not_sdk = tmp_path / "empty"
    not_sdk.mkdir()
    with pytest.raises(ToolError, match="is not a neuralSPOT tree"):
        build(_params(job, not_sdk), "apollo4p_evb")
    with pytest.raises(ToolError, match="arm-none-eabi-gcc is not installed") as exc:
        build(
            _params(job, fake_sdk["sdk"], **{"firmware.toolchain_dir": str(tmp_path / "nowhere")}),
            "apollo4p_evb",
        )
    assert "apt-get install gcc-arm-none-eabi" in (exc.value.hint or "")


def test_sim_build_is_current_until_the_export_changes(job: Path) -> None:
    params = _params(job)
    result = build(params)
    assert result.board.name == "sim" and result.manifest["emulates"] == "apollo4p_evb"
    assert result.binary.is_file() and os.access(result.binary, os.X_OK)
    assert result.manifest["sizes"]["text"] > 0
    assert (
        ensure_built(params, get_board("sim")) == result.binary and stale_reasons(params, result.board) == []
    )
    before = result.binary.stat().st_mtime_ns
    with (job / "export" / "model_config.h").open("a") as fh:
        fh.write("/* changed */\n")
    assert stale_reasons(params, result.board) == [
        "the firmware sources or model headers changed since it was built"
    ]
    ensure_built(params, get_board("sim"))
    assert result.binary.stat().st_mtime_ns != before and stale_reasons(params, result.board) == []
    assert flash(params).skipped


def test_build_is_reproducible(job: Path) -> None:
    params = _params(job)
    first = build(params).manifest
    second = build(params).manifest
    assert first["sources_sha256"] == second["sources_sha256"] and first["build_id"] == second["build_id"]


def test_doctor_reports_what_a_board_needs(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["doctor", "-c", str(CONFIG), "--job-dir", str(job)]
    assert main(base) == 0  # the virtual EVB needs gcc and the Python headers, both here
    out = capsys.readouterr().out
    assert "C compiler (virtual EVB)" in out and "Python headers" in out
    code = main([*base, "--board", "apollo4p_evb", "--set", f"runner.params.tool={tmp_path / 'NoJLinkExe'}"])
    captured = capsys.readouterr()
    assert code == 4 and "missing for apollo4p_evb" in captured.err
    assert "neuralSPOT SDK" in captured.out and "flash runner (jlink)" in captured.out

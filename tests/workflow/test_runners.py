"""Flash runners: exact command lines (golden), capabilities, and how a tool's failure is judged.

The ``fake_JLinkExe`` scripts are test doubles on PATH: they print what a J-Link prints and exit as
told; the runner must honour both the exit status and the failure lines.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hkdeploy.boards import get_board
from hkdeploy.errors import ConfigError, DeviceError, ToolError, UserError
from hkdeploy.flash.runners import FlashOptions, JLinkRunner, PyOcdRunner, RunnerFactory


def test_factory_lists_both_runners() -> None:
    assert RunnerFactory.list() == ["jlink", "pyocd"]
    assert RunnerFactory.get("jlink") is JLinkRunner and RunnerFactory.has("pyocd")


def test_jlink_golden_command_line_and_script(tmp_path: Path) -> None:
    binary = tmp_path / "fw.bin"
    binary.write_bytes(b"\0" * 16)
    r = JLinkRunner(get_board("apollo4p_evb"))
    [cmd] = r.commands(binary, tmp_path)
    assert cmd.argv == [
        "JLinkExe", "-nogui", "1", "-device", "AMAP42KK-KBR", "-if", "SWD", "-speed", "4000",
        "-autoconnect", "1", "-CommandFile", str(tmp_path / "flash.jlink"),
    ]  # fmt: skip
    assert (tmp_path / "flash.jlink").read_text() == (
        f'ExitOnError 1\nReset\nLoadFile "{binary.resolve()}" 0x00018000\nReset\nGo\nExit\n'
    )


def test_jlink_options_serial_erase_no_reset_address(tmp_path: Path) -> None:
    binary = tmp_path / "fw.bin"
    opts = FlashOptions(
        serial_number="000261012345", erase=True, reset=False, address=0x20000, speed_khz=1000
    )
    r = JLinkRunner(get_board("apollo3p_evb"), opts)
    [cmd] = r.commands(binary, tmp_path)
    assert cmd.argv[cmd.argv.index("-device") + 1] == "AMA3B2KK-KBR"
    assert cmd.argv[cmd.argv.index("-speed") + 1] == "1000"
    assert cmd.argv[cmd.argv.index("-SelectEmuBySN") + 1] == "000261012345"
    script = (tmp_path / "flash.jlink").read_text().splitlines()
    assert script == ["ExitOnError 1", "Reset", "Erase", f'LoadFile "{binary.resolve()}" 0x00020000', "Exit"]


def test_pyocd_golden_command_lines(tmp_path: Path) -> None:
    binary = tmp_path / "fw.bin"
    [cmd] = PyOcdRunner(get_board("apollo510_evb")).commands(binary, tmp_path)
    assert cmd.argv == [
        "pyocd", "flash", "--target", "ap510nfa_cbr", "--frequency", "4000000", "--erase", "sector",
        "--base-address", "0x00410000", "--format", "bin", str(binary.resolve()),
    ]  # fmt: skip
    opts = FlashOptions(serial_number="ABC", erase=True, reset=False)
    [cmd] = PyOcdRunner(get_board("apollo3p_evb"), opts).commands(binary, tmp_path)
    assert cmd.argv == [
        "pyocd", "flash", "--target", "ama3b2kk_kbr", "--uid", "ABC", "--frequency", "4000000", "--erase", "chip",
        "--base-address", "0x0000C000", "--format", "bin", "--no-reset", str(binary.resolve()),
    ]  # fmt: skip


def test_runner_params_from_config_are_checked() -> None:
    opts = FlashOptions.from_params({"speed_khz": 2000, "address": "0x18000"}, serial_number="S1", erase=None)
    assert opts == FlashOptions(serial_number="S1", speed_khz=2000, address=0x18000)
    with pytest.raises(ConfigError, match=r"unknown option.*speed") as exc:
        FlashOptions.from_params({"speed": 2000})
    assert "speed_khz" in (exc.value.hint or "")


def test_a_capability_the_runner_lacks_is_refused() -> None:
    class NoEraseRunner(JLinkRunner):
        name = "noerase"
        caps = JLinkRunner.caps.__class__(erase=False, reset=True, serial_number=True, address=True)

    with pytest.raises(UserError, match="noerase runner cannot use option 'erase'"):
        NoEraseRunner(get_board("apollo4p_evb"), FlashOptions(erase=True))


def _fake_tool(bin_dir: Path, name: str, output: str, code: int) -> Path:
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    args_file = bin_dir / f"{name}.args"
    tool.write_text(f"#!/bin/sh\necho \"$@\" > {args_file}\ncat <<'EOF'\n{output}\nEOF\nexit {code}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool


@pytest.mark.parametrize(
    ("output", "code", "expected"),
    [
        ("Connecting to J-Link via USB...O.K.\nScript processing completed.", 0, None),
        (
            "Connecting to J-Link via USB...O.K.\nError while programming flash: Verify failed.",
            1,
            "exit status 1",
        ),
        ("Connecting to J-Link via USB...O.K.\nCannot connect to target.", 0, "Cannot connect to target"),
        ("Connecting to J-Link via USB...FAILED: Cannot connect to J-Link.", 0, "FAILED"),
    ],
)
def test_jlink_failure_is_never_reported_as_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, code: int, expected: str | None
) -> None:
    _fake_tool(tmp_path / "bin", "JLinkExe", output, code)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    binary = tmp_path / "fw.bin"
    binary.write_bytes(b"\1" * 32)
    r = JLinkRunner(get_board("apollo4p_evb"))
    if expected is None:
        [res] = r.flash(binary, tmp_path)
        assert res.returncode == 0
        assert "-CommandFile" in (tmp_path / "bin" / "JLinkExe.args").read_text()
        return
    with pytest.raises(DeviceError, match=expected) as exc:
        r.flash(binary, tmp_path)
    assert exc.value.exit_code == 3 and exc.value.hint


def test_missing_tool_is_a_tool_error_with_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match="pyocd is not installed") as exc:
        PyOcdRunner(get_board("apollo4p_evb")).flash(tmp_path / "fw.bin", tmp_path)
    assert exc.value.exit_code == 4 and "pip install pyocd" in (exc.value.hint or "")


def test_dry_run_prints_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = PyOcdRunner(get_board("apollo4p_evb")).flash(tmp_path / "fw.bin", tmp_path, dry_run=True)
    assert [r.returncode for r in results] == [None]
    assert "(dry run) pyocd flash --target amap42kk_kbr" in capsys.readouterr().err.replace("\n", " ")

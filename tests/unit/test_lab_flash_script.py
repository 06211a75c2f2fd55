"""The lab flash script runs our runner's exact command lines on the exporter host.

Run here with a TEST DOUBLE JLinkExe / pyocd on PATH that records what it was given (no probe)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hkdeploy.boards import get_board
from hkdeploy.flash.runners import FlashOptions, JLinkRunner, PyOcdRunner
from hkdeploy.lab.flash import flash_script

FAKE_TOOL = """#!/bin/sh
# TEST DOUBLE of JLinkExe / pyocd: records argv, the command file and the file it names
rec="$FAKE_RECORD"
printf '%s\\n' "$@" > "$rec/argv"
prev=""
for a in "$@"; do
  if [ "$prev" = "-CommandFile" ]; then cp "$a" "$rec/commandfile"; fi
  prev="$a"
done
last=""; for a in "$@"; do last="$a"; done
if [ -f "$last" ]; then cp "$last" "$rec/binary"; fi
if [ -f "$rec/commandfile" ]; then
  f=$(sed -n 's/^LoadFile "\\(.*\\)" .*/\\1/p' "$rec/commandfile"); cp "$f" "$rec/binary"
fi
if [ -n "${FAKE_FAIL:-}" ]; then echo "$FAKE_FAIL"; fi
exit 0
"""


@pytest.fixture
def fake_tools(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("sh") is None or shutil.which("base64") is None or shutil.which("sha256sum") is None:
        pytest.skip("needs a POSIX shell with base64 and sha256sum (coreutils)")
    bin_dir, rec = tmp_path / "bin", tmp_path / "rec"
    bin_dir.mkdir()
    rec.mkdir()
    for name in ("JLinkExe", "pyocd"):
        (bin_dir / name).write_text(FAKE_TOOL)
        (bin_dir / name).chmod(0o755)
    return bin_dir, rec


def _run(script: str, tmp: Path, fake: tuple[Path, Path], fail: str = "") -> subprocess.CompletedProcess[str]:
    path = tmp / "flash.sh"
    path.write_text(script)
    env = {**os.environ, "PATH": f"{fake[0]}:{os.environ['PATH']}", "FAKE_RECORD": str(fake[1])}
    if fail:
        env["FAKE_FAIL"] = fail
    return subprocess.run(["sh", str(path)], env=env, capture_output=True, text=True, timeout=60)


BINARY = bytes(range(256)) * 40 + b"\x00\xff" * 100  # every byte value, zeros included


def test_jlink_script_runs_the_runners_command_lines(tmp_path: Path, fake_tools: tuple[Path, Path]) -> None:
    runner = JLinkRunner(get_board("apollo4p_evb"), FlashOptions(serial_number="801000123", speed_khz=2000))
    script = flash_script(runner, BINARY)
    assert script == flash_script(runner, BINARY)  # reproducible
    run = _run(script, tmp_path, fake_tools)
    assert run.returncode == 0, run.stdout + run.stderr
    rec = fake_tools[1]
    argv = (rec / "argv").read_text().splitlines()
    local = runner.commands(tmp_path / "fw.bin", tmp_path)[0].argv
    # the same argv as a local `hkdeploy flash`, but the command file lives in the script's temp dir
    assert argv[:-1] == local[1:-1] and Path(argv[-1]).name == "flash.jlink"
    expected = runner.script(tmp_path / "fw.bin").replace(str((tmp_path / "fw.bin").resolve()), "BIN")
    got = (rec / "commandfile").read_text()
    loaded = got.split('LoadFile "', 1)[1].split('"', 1)[0]
    assert got.replace(loaded, "BIN") == expected and Path(loaded).name == "firmware.bin"
    assert (rec / "binary").read_bytes() == BINARY
    assert "hkdeploy: flashed" in run.stdout


def test_jlink_failure_markers_fail_the_script(tmp_path: Path, fake_tools: tuple[Path, Path]) -> None:
    runner = JLinkRunner(get_board("apollo4p_evb"))
    run = _run(flash_script(runner, BINARY), tmp_path, fake_tools, fail="Cannot connect to target.")
    assert run.returncode == 1 and "jlink failed: Cannot connect to target" in run.stderr


def test_pyocd_script_runs_the_runners_command_line(tmp_path: Path, fake_tools: tuple[Path, Path]) -> None:
    runner = PyOcdRunner(get_board("apollo4p_evb"), FlashOptions(serial_number="ABC"))
    run = _run(flash_script(runner, BINARY), tmp_path, fake_tools)
    assert run.returncode == 0, run.stdout + run.stderr
    argv = (fake_tools[1] / "argv").read_text().splitlines()
    local = runner.commands(tmp_path / "fw.bin", tmp_path)[0].argv
    assert argv[:-1] == local[1:-1] and Path(argv[-1]).name == "firmware.bin"
    assert (fake_tools[1] / "binary").read_bytes() == BINARY


def test_a_corrupted_script_refuses_to_flash(tmp_path: Path, fake_tools: tuple[Path, Path]) -> None:
    runner = JLinkRunner(get_board("apollo4p_evb"))
    lines = flash_script(runner, BINARY).splitlines()
    i = next(k for k, line in enumerate(lines) if line == "HK_BINARY") - 1
    lines[i] = ("B" if lines[i][0] != "B" else "C") + lines[i][1:]  # one base64 char changed
    run = _run("\n".join(lines) + "\n", tmp_path, fake_tools)
    assert run.returncode != 0 and not (fake_tools[1] / "argv").exists()

"""The QEMU builder's commands and errors (no cross compiler or QEMU needed: dry runs and doubles)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hkdeploy.errors import DeviceError, ToolError, UserError
from hkdeploy.platforms import qemu_build, qemu_process
from hkdeploy.platforms.qemu_build import build_commands, build_qemu_firmware, partial_path
from hkdeploy.platforms.qemu_process import QemuBoard, qemu_command

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "c" / "fake_engine.c"


def test_c_engine_links_with_gcc_and_the_machine_script(tmp_path: Path) -> None:
    m, cmds = build_commands(
        "mps3-an547", [FAKE], tmp_path / "fw.elf", defines={"X": 3, "Y": None}, build_id="b1"
    )
    compile_argv = [c.argv for c in cmds[:-1]]
    link = cmds[-1].argv
    assert m.cpu == "cortex-m55" and len(compile_argv) == 4 + 4 + 1  # platform + core + engine
    assert all(
        a[0] == "arm-none-eabi-gcc" and "-mcpu=cortex-m55" in a and "-std=c11" in a for a in compile_argv
    )
    assert all("-DHK_QEMU_MACHINE_AN547=1" in a and "-DX=3" in a and "-DY" in a for a in compile_argv)
    assert '-DHK_BUILD_ID="b1"' in compile_argv[0] and '-DHK_BOARD_NAME="qemu:mps3-an547"' in compile_argv[0]
    assert link[0] == "arm-none-eabi-gcc" and link[link.index("-T") + 1] == "mps3_an547.ld"
    assert link[-1] == str(partial_path(tmp_path / "fw.elf"))  # renamed over fw.elf after a good link


def test_cxx_engine_and_libraries_link_with_gxx(tmp_path: Path) -> None:
    engine = [REPO / "firmware" / "engine" / "hk_engine_tflm.cc"]
    lib = tmp_path / "libtflm.a"
    _, cmds = build_commands(
        "mps2-an386", engine, tmp_path / "fw.elf", include_dirs=[tmp_path / "tflm"], libs=[lib, "-lm"]
    )
    cxx = next(c.argv for c in cmds if "hk_engine_tflm.cc" in " ".join(c.argv))
    assert cxx[0] == "arm-none-eabi-g++" and "-fno-exceptions" in cxx and "-fno-rtti" in cxx
    assert f"-I{tmp_path / 'tflm'}" in cxx and "-mfpu=fpv4-sp-d16" in cxx
    link = cmds[-1].argv
    assert link[0] == "arm-none-eabi-g++"
    objects_end = max(i for i, a in enumerate(link) if a.endswith(".o"))
    assert link.index(str(lib)) > objects_end and link.index("-lm") > objects_end


def test_dry_run_prints_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = build_qemu_firmware("mps2-an386", [FAKE], tmp_path / "fw.elf", dry_run=True)
    assert not (tmp_path / "fw.elf").exists() and build.sizes == {}
    assert capsys.readouterr().err.count("(dry run) arm-none-eabi-gcc") == len(build.commands)


def test_unknown_machine_and_missing_tools_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="unknown QEMU machine 'mps2-an385'") as err:
        build_commands("mps2-an385", [FAKE], tmp_path / "fw.elf")
    assert "mps2-an386" in (err.value.hint or "")
    with pytest.raises(UserError, match="does not exist"):
        build_qemu_firmware("mps2-an386", [tmp_path / "nope.c"], tmp_path / "fw.elf")
    monkeypatch.setattr(qemu_build.shutil, "which", lambda name: None)
    with pytest.raises(ToolError) as tool:
        build_qemu_firmware("mps2-an386", [FAKE], tmp_path / "fw.elf")
    assert tool.value.hint == "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"


def test_board_without_qemu_is_a_tool_error_with_the_install_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qemu_process.shutil, "which", lambda name: None)
    with pytest.raises(ToolError) as err:
        QemuBoard(tmp_path / "fw.elf", "mps2-an386").start()
    assert err.value.hint == "apt-get install qemu-system-arm"


@pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None, reason="needs qemu-system-arm: apt-get install qemu-system-arm"
)
def test_board_without_elf_is_a_device_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="does not exist") as err:
        QemuBoard(tmp_path / "fw.elf", "mps3-an547").start()
    assert "hkdeploy build" in (err.value.hint or "")


def test_qemu_runs_deterministically_with_the_uart_on_a_pty(tmp_path: Path) -> None:
    argv = qemu_command("mps3-an547", tmp_path / "fw.elf", tmp_path / "mon.sock")
    assert argv[:3] == ["qemu-system-arm", "-M", "mps3-an547"]
    assert argv[argv.index("-icount") + 1] == "shift=0" and argv[argv.index("-serial") + 1] == "pty"
    assert argv[argv.index("-monitor") + 1] == f"unix:{tmp_path / 'mon.sock'},server=on,wait=off"

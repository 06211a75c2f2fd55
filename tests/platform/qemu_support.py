"""Helpers shared by the QEMU platform tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hkdeploy.platforms import tflm_lib
from hkdeploy.platforms.qemu_build import MACHINES, build_qemu_firmware
from hkdeploy.platforms.qemu_process import QemuBoard

REPO = Path(__file__).resolve().parents[2]
FAKE_ENGINE = REPO / "tests" / "c" / "fake_engine.c"
INSTALL = "apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi"

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason=f"needs qemu-system-arm and arm-none-eabi-gcc: {INSTALL}",
)


#: the upstream TFLM trees the opt-in tests build from (HK_TFLM_ROOT / HK_TFLM_DOWNLOADS, docs/tflm.md)
TREES = tflm_lib.TflmTrees.locate()
_MISSING = [s.name for s in tflm_lib.check_trees(TREES, "cmsis_nn") if not s.found]
_ARM_CXX = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"

needs_tflm_trees = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"needs the upstream TFLM trees ({', '.join(_MISSING)} not found): set HK_TFLM_ROOT=<tflite-micro> "
    "and HK_TFLM_DOWNLOADS=<folder with cmsis, cmsis_nn, flatbuffers, gemmlowp, ruy> (docs/tflm.md)",
)
needs_arm_cxx = pytest.mark.skipif(
    shutil.which("arm-none-eabi-g++") is None, reason=f"needs arm-none-eabi-g++: {_ARM_CXX}"
)
needs_arm_cxx_and_qemu = pytest.mark.skipif(
    shutil.which("arm-none-eabi-g++") is None or shutil.which("qemu-system-arm") is None,
    reason=f"needs arm-none-eabi-g++ and qemu-system-arm: {_ARM_CXX} qemu-system-arm",
)


def fake_engine_defines(machine: str) -> dict[str, str | int | None]:
    """The fake engine's deliberate-fault trigger, with an address nothing answers on ``machine``."""
    return {"HK_FAKE_ENGINE_FAULTS": 1, "HK_FAKE_BAD_ADDRESS": f"{MACHINES[machine].unmapped_address:#x}u"}


def qemu_processes_running(path_part: str) -> list[str]:
    """Command lines of live qemu-system-arm processes whose arguments contain ``path_part``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if cmdline.startswith("qemu-system-arm") and path_part in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def build_fake_elfs(out: Path, stem: str, build_id: str, **defines: Any) -> dict[str, Path]:
    """machine -> ELF of the link core + QEMU platform + the fake engine (``defines`` on top of its own)."""
    return {
        machine: build_qemu_firmware(
            machine,
            [FAKE_ENGINE],
            out / f"{stem}_{machine}.elf",
            defines={**fake_engine_defines(machine), **defines},
            build_id=build_id,
            log=out / "commands.log",
        ).elf
        for machine in MACHINES
    }


@contextlib.contextmanager
def running_boards(elfs: dict[str, Path], logs: Path) -> Iterator[dict[str, QemuBoard]]:
    """machine -> a booted board per ELF; all stopped at the end, and then no QEMU of theirs is left."""
    boards: dict[str, QemuBoard] = {}
    try:
        for machine, elf in elfs.items():
            boards[machine] = QemuBoard(elf, machine, log_path=logs / f"{machine}.log").start()
        yield boards
    finally:
        for board in boards.values():
            board.stop()
    left = qemu_processes_running(str(next(iter(elfs.values())).parent))
    assert not left, f"stray QEMU processes: {left}"

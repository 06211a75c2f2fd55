"""Fixtures of the emulated Cortex-M tests: the link core + the fake engine (a TEST DOUBLE) built for
both QEMU machines with the production builder, and one booted board per machine for the session.

Without qemu-system-arm or arm-none-eabi-gcc the QEMU tests skip with the install line. When the
shared boards stop at the end of the session, the fixture checks /proc: no QEMU process started from
this session's firmware may be left (an error of the last test otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hkdeploy.platforms.qemu_build import MACHINES, build_qemu_firmware
from hkdeploy.platforms.qemu_process import QemuBoard
from tests.platform.qemu_support import FAKE_ENGINE, fake_engine_defines, qemu_processes_running


@pytest.fixture(scope="session")
def qemu_elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """machine -> ELF of the link core + QEMU platform + fake engine (test double)."""
    out = tmp_path_factory.mktemp("qemu-fw")
    elfs = {}
    for machine in MACHINES:
        build = build_qemu_firmware(
            machine,
            [FAKE_ENGINE],
            out / f"hk_fake_{machine}.elf",
            defines=fake_engine_defines(machine),
            build_id="test-fake-engine",
            log=out / "commands.log",
        )
        elfs[machine] = build.elf
    return elfs


@pytest.fixture(scope="session")
def qemu_boards(
    qemu_elfs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, QemuBoard]]:
    """machine -> a running board, shared by the session (tests reset it before use)."""
    logs = tmp_path_factory.mktemp("qemu-logs")
    boards: dict[str, QemuBoard] = {}
    try:
        for machine, elf in qemu_elfs.items():
            boards[machine] = QemuBoard(elf, machine, log_path=logs / f"{machine}.log").start()
        yield boards
    finally:
        for board in boards.values():
            board.stop()
    # after the suite's boards stopped: no QEMU started from this session's firmware is left
    left = qemu_processes_running(str(next(iter(qemu_elfs.values())).parent))
    assert not left, f"stray QEMU processes: {left}"


@pytest.fixture(params=sorted(MACHINES))
def machine(request: pytest.FixtureRequest) -> str:
    return str(request.param)

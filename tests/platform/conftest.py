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

from hkdeploy.platforms.qemu_build import MACHINES
from hkdeploy.platforms.qemu_process import QemuBoard
from tests.platform.qemu_support import build_fake_elfs, running_boards


@pytest.fixture(scope="session")
def qemu_elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """machine -> ELF of the link core + QEMU platform + fake engine (test double)."""
    return build_fake_elfs(tmp_path_factory.mktemp("qemu-fw"), "hk_fake", "test-fake-engine")


@pytest.fixture(scope="session")
def qemu_boards(
    qemu_elfs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, QemuBoard]]:
    """machine -> a running board, shared by the session (tests reset it before use)."""
    with running_boards(qemu_elfs, tmp_path_factory.mktemp("qemu-logs")) as boards:
        yield boards


@pytest.fixture(params=sorted(MACHINES))
def machine(request: pytest.FixtureRequest) -> str:
    return str(request.param)

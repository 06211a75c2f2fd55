"""Platforms: every kind of target behind one interface (the project's Factory of targets).

Each board file names its ``platform``; ``platform_of(board)`` returns the object that knows how to
build, flash (or not), reach and check it:

==============  ==========================================================================
``host``        the virtual EVB: the firmware's link core on Linux, TFLM via the runtime
``qemu``        the real firmware (core + engine + a Cortex-M platform) under qemu-system-arm
``neuralspot``  Apollo EVBs: neuralSPOT's make, J-Link/pyOCD, USB CDC or UART
==============  ==========================================================================

Adding a platform is one module with a ``Platform`` subclass registered here plus board files
naming it (docs/architecture.md). ``target_board`` decides which board a command is for and
``open_devices`` reaches the devices of a run; no verb branches on the kind of target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hkdeploy.boards import Board, board_for, get_board
from hkdeploy.config.params import DeployParams
from hkdeploy.console import info
from hkdeploy.factory import Factory
from hkdeploy.platforms.base import BuiltFirmware, Check, Counter, Platform, fixed_urls

if TYPE_CHECKING:
    from hkdeploy.link.client import DeviceClient

PlatformFactory: Factory[type[Platform]] = Factory("platform")


def _register() -> None:
    from hkdeploy.platforms.host import HostPlatform
    from hkdeploy.platforms.neuralspot import NeuralSpotPlatform
    from hkdeploy.platforms.qemu import QemuPlatform

    for cls in (HostPlatform, QemuPlatform, NeuralSpotPlatform):
        if not PlatformFactory.has(cls.name):
            PlatformFactory.register(cls.name, cls)


def platform_of(board: Board) -> Platform:
    """The platform object of ``board`` (from its board file's ``platform``)."""
    _register()
    return PlatformFactory.get(board.platform)()


def target_board(params: DeployParams, board: str | None = None) -> Board:
    """The board a command is for: ``--board``; else the virtual EVB for ``backend: sim`` (it then
    emulates the config's board); else the config's board."""
    if board:
        return get_board(board)
    configured = board_for(params.board)
    if params.backend == "sim" and configured.platform != "host":
        return get_board("sim")
    return configured


@contextlib.contextmanager
def open_devices(
    params: DeployParams,
    board: Board,
    ports: list[str] | None = None,
    count: int = 1,
    log_dir: Path | None = None,
) -> Iterator[list[str]]:
    """The URLs of a run's devices, valid inside the context.

    ``ports`` given: those (whatever the platform: the user says where the devices are; a virtual
    EVB or emulator is then not started). Otherwise the board's platform reaches ``count`` devices
    (starting and always stopping the processes it owns, or finding a plugged-in board).
    """
    if ports:
        if board.platform != "neuralspot":
            info(f"using the given port(s) {', '.join(ports)}; no {board.name} device is started")
        with fixed_urls(list(ports)) as urls:
            yield urls
        return
    platform = platform_of(board)
    with platform.launch(params, board, platform.device_count(count), log_dir or params.validate_dir) as urls:
        yield urls


def connect(params: DeployParams, url: str) -> DeviceClient:
    """A DeviceClient on ``url`` with the config's link settings and time limits."""
    from hkdeploy.link.client import DeviceClient, Timeouts

    link = params.link
    return DeviceClient(
        url,
        link.baud,
        Timeouts(link.connect_timeout, link.packet_timeout, link.command_timeout, link.retries),
    )


__all__ = [
    "BuiltFirmware",
    "Check",
    "Counter",
    "Platform",
    "PlatformFactory",
    "connect",
    "open_devices",
    "platform_of",
    "target_board",
]

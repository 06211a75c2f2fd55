"""What every kind of target (a platform) knows about itself.

A platform is the one place that knows how its firmware is built, whether it needs flashing, how its
devices are reached (a process it starts and owns, or a port it finds), what ``doctor`` checks and
what its cycle counter measures. The verbs (build, flash, validate, demo, doctor, run) ask the
target's platform and never branch on the kind of target. No TensorFlow here.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table. ``required`` checks that fail make the command fail (exit 4)."""

    name: str
    ok: bool
    detail: str
    hint: str = ""
    required: bool = True

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "missing" if self.required else "warning"


@dataclass
class BuiltFirmware:
    """What a platform's build produced (the build verb adds hashes and writes the manifest)."""

    binary: Path
    command: list[str]
    sizes: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # toolchain, SDK revision, ... for the manifest


@dataclass(frozen=True)
class FirmwareApp:
    """What the firmware runs on top of the engine: the binary link (``LINK``) or another front end
    (the MLPerf Tiny DUT, ``hkdeploy.mlperf.build.mlperf_app``). Every platform builds any app from
    these facts, so an app is data, not a second copy of each platform's build.

    ``front_end``: its sources relative to firmware/ (in place of the link core); ``extra_dirs``:
    firmware/ folders added to the project; ``identity``: settings baked into the image (a change means
    a rebuild); ``defines``: C macros for gcc-driven builds; ``make_vars``: neuralSPOT make variables
    (they replace the link firmware's of the same name); ``host_binary``: the virtual EVB's file name.
    """

    name: str = "link"
    front_end: tuple[str, ...] = ()
    extra_dirs: tuple[str, ...] = ()
    identity: tuple[tuple[str, str | int | bool], ...] = ()
    defines: tuple[tuple[str, str | int | None], ...] = ()
    make_vars: tuple[str, ...] = ()
    host_binary: str = "hk_host"
    label: str = "firmware"

    @property
    def is_link(self) -> bool:
        return self.name == "link"


LINK = FirmwareApp()


@dataclass(frozen=True)
class Counter:
    """What the numbers a device reports as cycles and microseconds are.

    ``unit`` names the count (cycles, instructions, host ns); ``label`` is the sentence every report
    shows beside a latency; ``real_time`` says whether the microseconds are the board's own time.
    """

    unit: str
    label: str
    real_time: bool
    #: ``unit`` per count the device reports (QEMU: instructions per SysTick tick; else 1)
    per_count: float = 1.0

    @property
    def measured(self) -> bool:
        """False when the device has no counter ("none"): its zeros are not a measurement."""
        return self.unit != "none"


def counter_from_hello(kind: int, board_name: str, fallback: Counter, cpu_hz: int = 0) -> Counter:
    """What a device's timings are, from the ``counter_kind`` it reports in HELLO (the device knows
    best: a board with its debug domain off has no counter even where the platform would have one).

    An emulated Cortex-M counts SysTick ticks at ``cpu_hz`` under ``-icount shift=0`` (one
    instruction per virtual nanosecond): instructions = ticks x 1e9 / cpu_hz (``per_count``)."""
    if kind == 0:
        return Counter(
            "none", f"no cycle counter on {board_name} (counter_kind 0): latency not measured", False
        )
    if kind == 2:
        return Counter(
            "host ns", "host time of the virtual EVB (x86 TFLM runtime), not the board's latency", False
        )
    if kind == 3:
        if cpu_hz <= 0:
            return Counter(
                "SysTick ticks",
                f"SysTick ticks of emulated {board_name} under QEMU -icount, not Apollo latency",
                False,
            )
        per = 1e9 / cpu_hz
        return Counter(
            "instructions",
            f"instructions on emulated {board_name} (QEMU -icount shift=0: SysTick ticks x {per:g}), "
            "not Apollo latency",
            False,
            per,
        )
    if kind == 1:
        return (
            fallback if fallback.real_time else Counter("cycles", f"core cycle counter of {board_name}", True)
        )
    return fallback


class Platform(ABC):
    """A kind of target. Subclasses are registered in ``hkdeploy.platforms``."""

    name: ClassVar[str]
    needs_flash: ClassVar[bool] = False
    #: firmware/ subfolders rendered into a project for this platform
    firmware_dirs: ClassVar[tuple[str, ...]] = ("core", "engine", "protocol")

    def limits(self, params: DeployParams, board: Board) -> Board:
        """The board whose memory limits apply to ``board`` (itself unless it emulates another)."""
        return board

    @abstractmethod
    def counter(self, board: Board) -> Counter:
        """What this platform's cycle counter measures on ``board``."""

    @abstractmethod
    def build(
        self,
        params: DeployParams,
        board: Board,
        project: Path | None,
        out: Path,
        build_id: str,
        *,
        dry_run: bool,
        log: Path,
        app: FirmwareApp = LINK,
    ) -> BuiltFirmware:
        """Build the rendered ``project`` of ``app`` into ``out`` (``project`` is None for a dry run before rendering).

        Raises:
            ToolError: a tool or SDK is missing (checked before anything is rendered) or the build failed.
        """

    def preflight(self, params: DeployParams, board: Board) -> None:  # noqa: B027 (optional hook)
        """Check what the build needs before anything is rendered (raise ToolError naming what's missing)."""

    @abstractmethod
    def checks(self, params: DeployParams, board: Board, runner: str | None = None) -> list[Check]:
        """What ``doctor`` reports for ``board`` beyond the Python packages and the export."""

    @abstractmethod
    def launch(
        self, params: DeployParams, board: Board, count: int, log_dir: Path
    ) -> contextlib.AbstractContextManager[list[str]]:
        """Reach ``count`` devices of ``board``: URLs for DeviceClient, valid inside the context.

        A platform that starts processes (virtual EVB, emulator) owns them and stops them on exit.
        """

    def device_count(self, requested: int) -> int:
        """How many devices a run may use (platforms that find ports use what is plugged in: 1)."""
        return max(1, requested)


@contextlib.contextmanager
def fixed_urls(urls: list[str]) -> Iterator[list[str]]:
    """A launch context for devices that already exist (ports given by the user or found)."""
    yield urls

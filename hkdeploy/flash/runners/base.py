"""The runner interface and the options every runner understands."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from hkdeploy.boards import Board
from hkdeploy.errors import ConfigError, DeviceError, ToolError, UserError
from hkdeploy.proc import Command, Result, run, tail


@dataclass(frozen=True)
class RunnerCaps:
    """What a runner can do besides writing the binary."""

    erase: bool = False
    reset: bool = False
    serial_number: bool = False
    address: bool = False


@dataclass(frozen=True)
class FlashOptions:
    """Options of one flash; from ``runner.params`` in the config, overridden by the command line.

    Args:
        serial_number: the probe's serial number (several probes attached).
        erase: erase the whole chip first (slow; the default erases only what is written).
        reset: reset and start the program after writing.
        address: load address (default: the board's ``load_address``).
        speed_khz: SWD clock.
        tool: path of the tool's executable (default: found on PATH).
        timeout_s: bound of each tool invocation.
    """

    serial_number: str | None = None
    erase: bool = False
    reset: bool = True
    address: int | None = None
    speed_khz: int = 4000
    tool: str | None = None
    timeout_s: float = 120.0

    @classmethod
    def from_params(cls, params: dict[str, Any], **overrides: Any) -> FlashOptions:
        """Build from a config's ``runner.params``; unknown keys are an error naming the valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ConfigError(
                f"runner.params: unknown option(s) {', '.join(unknown)}",
                hint=f"valid options: {', '.join(sorted(names))}",
            )
        merged = {**params, **{k: v for k, v in overrides.items() if v is not None}}
        if isinstance(merged.get("address"), str):
            merged["address"] = int(merged["address"], 0)
        return cls(**merged)


class Runner(ABC):
    """A flash tool. Subclasses set ``name``, ``tool``, ``caps``, ``install_hint``."""

    name: ClassVar[str]
    tool: ClassVar[str]
    caps: ClassVar[RunnerCaps]
    install_hint: ClassVar[str]

    def __init__(self, board: Board, options: FlashOptions | None = None) -> None:
        self.board = board
        self.options = options or FlashOptions()
        self._check_caps()

    def _check_caps(self) -> None:
        o, c = self.options, self.caps
        wanted = {
            "erase": o.erase,
            "serial_number": o.serial_number is not None,
            "address": o.address is not None,
        }
        for cap, asked in wanted.items():
            if asked and not getattr(c, cap):
                raise UserError(
                    f"the {self.name} runner cannot use option '{cap}'",
                    hint="leave it out or pick another runner (runner.name: jlink or pyocd)",
                )
        if not o.reset and not c.reset:
            raise UserError(
                f"the {self.name} runner cannot skip the reset",
                hint="drop --no-reset, or use a runner that can",
            )

    @property
    def executable(self) -> str:
        """The tool's executable (the configured path, or the name looked up on PATH)."""
        return self.options.tool or self.tool

    def available(self) -> str | None:
        """The tool's full path if it is installed, else None."""
        return shutil.which(self.executable)

    def address(self) -> int:
        """Where the binary goes: the option, else the board's load address."""
        if self.options.address is not None:
            return self.options.address
        if self.board.load_address is None:
            raise ConfigError(
                f"board {self.board.name} has no load_address",
                hint="set load_address in the board file or runner.params.address",
            )
        return self.board.load_address

    @abstractmethod
    def commands(self, binary: Path, workdir: Path) -> list[Command]:
        """The exact commands that flash ``binary`` (may write a script file into ``workdir``)."""

    def judge(self, result: Result) -> None:
        """Raise DeviceError unless the tool's exit status and output say the flash worked."""
        if result.returncode not in (0, None):
            raise DeviceError(
                f"{self.name}: flashing failed (exit status {result.returncode})\n{tail(result.output)}",
                hint=self.failure_hint(result.output),
            )

    def failure_hint(self, output: str) -> str:
        """A next step for a failed flash, from what the tool printed."""
        return "is the board powered and the probe connected? run with -vv for the tool's output"

    def flash(
        self, binary: Path, workdir: Path, *, dry_run: bool = False, log: Path | None = None
    ) -> list[Result]:
        """Flash ``binary``; returns each command's result.

        Raises:
            ToolError: the tool is not installed. DeviceError: the flash failed.
        """
        cmds = self.commands(binary, workdir)
        if not dry_run and self.available() is None:
            raise ToolError(
                f"{self.executable} is not installed (runner {self.name})", hint=self.install_hint
            )
        results = []
        for cmd in cmds:
            res = run(cmd, dry_run=dry_run, log=log, check=False, echo=True)
            if not dry_run:
                self.judge(res)
            results.append(res)
        return results

"""SEGGER J-Link Commander (``JLinkExe``) runner.

The command file starts with ``ExitOnError 1`` so a failed step ends the session with exit status 1,
and the exit status is honoured (neuralSPOT's ``make deploy`` ignores it). Some J-Link versions exit
0 after failing to connect, so the output is checked for the failure lines as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from hkdeploy.errors import DeviceError
from hkdeploy.flash.runners.base import Runner, RunnerCaps
from hkdeploy.fsutil import write_text
from hkdeploy.proc import Command, Result, tail

# Lines J-Link Commander prints when something went wrong even if it exits with 0.
FAILURE_MARKERS = (
    "Cannot connect to target",
    "Connecting to J-Link via USB...FAILED",
    "Could not open file",
    "Failed to open file",
    "Error while programming flash",
    "Could not find supported CPU",
    "Unknown device",
    "****** Error",
)


class JLinkRunner(Runner):
    name: ClassVar[str] = "jlink"
    tool: ClassVar[str] = "JLinkExe"
    caps: ClassVar[RunnerCaps] = RunnerCaps(erase=True, reset=True, serial_number=True, address=True)
    install_hint: ClassVar[str] = (
        "install the J-Link Software Pack from segger.com/downloads/jlink (it provides JLinkExe), "
        "or set runner.name to pyocd"
    )

    def script(self, binary: Path) -> str:
        """The J-Link Commander command file (deterministic: no timestamps)."""
        lines = ["ExitOnError 1", "Reset"]
        if self.options.erase:
            lines.append("Erase")
        lines.append(f'LoadFile "{binary.resolve()}" 0x{self.address():08X}')
        if self.options.reset:
            lines += ["Reset", "Go"]
        lines.append("Exit")
        return "\n".join(lines) + "\n"

    def commands(self, binary: Path, workdir: Path) -> list[Command]:
        device = self.board.jlink_device
        if not device:
            from hkdeploy.errors import ConfigError

            raise ConfigError(f"board {self.board.name} has no jlink_device", hint="set it in the board file")
        script = write_text(workdir / "flash.jlink", self.script(binary))
        argv = [self.executable, "-nogui", "1", "-device", device, "-if", "SWD"]
        argv += ["-speed", str(self.options.speed_khz), "-autoconnect", "1"]
        if self.options.serial_number:
            argv += ["-SelectEmuBySN", self.options.serial_number]
        argv += ["-CommandFile", str(script)]
        return [Command(argv, timeout=self.options.timeout_s, what="J-Link flash", hint=self.install_hint)]

    def judge(self, result: Result) -> None:
        super().judge(result)
        found = [m for m in FAILURE_MARKERS if m in result.output]
        if found:
            raise DeviceError(
                f"jlink: flashing failed ({found[0]!r} in JLinkExe's output)\n{tail(result.output)}",
                hint=self.failure_hint(result.output),
            )

    def failure_hint(self, output: str) -> str:
        if "Connecting to J-Link via USB...FAILED" in output:
            return "is the J-Link connected, and not held by another program (Ozone, a debugger, a second JLinkExe)?"
        if "Cannot connect to target" in output or "Could not find supported CPU" in output:
            return (
                f"is the board powered and the SWD cable seated? is it really a {self.board.name} "
                f"(J-Link device {self.board.jlink_device})?"
            )
        if "Unknown device" in output:
            return "your J-Link software is too old for this device: update the J-Link Software Pack"
        return super().failure_hint(output)

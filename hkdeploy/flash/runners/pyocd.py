"""pyOCD runner (``pyocd flash``); needs the Ambiq CMSIS pack for the board's target."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from hkdeploy.flash.runners.base import Runner, RunnerCaps
from hkdeploy.proc import Command


class PyOcdRunner(Runner):
    name: ClassVar[str] = "pyocd"
    tool: ClassVar[str] = "pyocd"
    caps: ClassVar[RunnerCaps] = RunnerCaps(erase=True, reset=True, serial_number=True, address=True)
    install_hint: ClassVar[str] = (
        "pip install pyocd, then `pyocd pack install <target>` for the board's target"
    )

    def target(self) -> str:
        """The pyOCD target: the board's ``pyocd_target``, else derived from its J-Link device name."""
        if self.board.pyocd_target:
            return self.board.pyocd_target
        if self.board.jlink_device:
            return self.board.jlink_device.lower().replace("-", "_")
        from hkdeploy.errors import ConfigError

        raise ConfigError(f"board {self.board.name} has no pyocd_target", hint="set it in the board file")

    def commands(self, binary: Path, workdir: Path) -> list[Command]:
        argv = [self.executable, "flash", "--target", self.target()]
        if self.options.serial_number:
            argv += ["--uid", self.options.serial_number]
        argv += ["--frequency", str(self.options.speed_khz * 1000)]
        argv += ["--erase", "chip" if self.options.erase else "sector"]
        argv += ["--base-address", f"0x{self.address():08X}", "--format", "bin"]
        if not self.options.reset:
            argv.append("--no-reset")
        argv.append(str(binary.resolve()))
        return [Command(argv, timeout=self.options.timeout_s, what="pyOCD flash", hint=self.install_hint)]

    def failure_hint(self, output: str) -> str:
        if "Target type" in output and "not recognized" in output:
            return f"install the target's pack: pyocd pack install {self.target()}"
        if "No connected debug probes" in output or "No available debug probes" in output:
            return "no debug probe found: is the board's USB (J-Link OB / CMSIS-DAP) connected?"
        return super().failure_hint(output)

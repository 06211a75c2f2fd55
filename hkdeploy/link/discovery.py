"""Find the board's serial port: ``--port`` wins; else USB VID/PID and serial number.

neuralSPOT's USB CDC uses TinyUSB's example VID 0xCAFE (any TinyUSB gadget matches it), so VID:PID
alone is not proof: several matches are an error that lists them, and a serial number (or --port)
picks one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from hkdeploy.errors import DeviceError


@dataclass(frozen=True)
class PortInfo:
    """A serial port as the OS lists it."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    description: str

    def describe(self) -> str:
        ids = (
            f"{self.vid:04X}:{self.pid:04X}" if self.vid is not None and self.pid is not None else "no USB id"
        )
        return f"{self.device} ({ids}, serial {self.serial_number or '-'}, {self.description})"


def list_ports() -> list[PortInfo]:
    """The serial ports the OS knows (pyserial's list_ports)."""
    from serial.tools import list_ports as lp

    return [
        PortInfo(p.device, p.vid, p.pid, p.serial_number, p.description or "")
        for p in sorted(lp.comports(), key=lambda x: x.device)
    ]


def find_port(
    port: str | None,
    vid: int | None,
    pid: int | None,
    serial_number: str | None = None,
    ports: list[PortInfo] | None = None,
) -> str:
    """The port to open.

    Args:
        port: an explicit device path or pyserial URL (returned as is).
        vid / pid: the board's USB ids (from the board registry or the config).
        serial_number: picks one board when several match.
        ports: the port list (default: ask the OS).

    Raises:
        DeviceError: nothing matches, or several do without a serial number to choose.
    """
    if port:
        return port
    ports = list_ports() if ports is None else ports
    if vid is None and pid is None and serial_number is None:
        raise DeviceError(
            "no port given and the board has no USB id to look for",
            hint="pass --port (e.g. /dev/ttyACM0 or socket://host:port) or set link.port",
        )
    matches = [
        p
        for p in ports
        if (vid is None or p.vid == vid)
        and (pid is None or p.pid == pid)
        and (serial_number is None or p.serial_number == serial_number)
    ]
    if len(matches) == 1:
        return matches[0].device
    wanted = f"{vid:04X}:{pid:04X}" if vid is not None and pid is not None else "the board's USB id"
    if not matches:
        seen = "; ".join(p.describe() for p in ports) or "no serial ports at all"
        raise DeviceError(
            f"no serial port matches {wanted}"
            + (f" with serial {serial_number}" if serial_number else "")
            + f" (seen: {seen})",
            hint="is the board connected with the USB port of the hkdeploy firmware (not only the J-Link)? "
            "or pass --port",
        )
    raise DeviceError(
        f"{len(matches)} ports match {wanted}: " + "; ".join(p.describe() for p in matches),
        hint="pick one with --port or link.serial_number",
    )


def wait_for_port(
    port: str | None,
    vid: int | None,
    pid: int | None,
    serial_number: str | None = None,
    timeout: float = 10.0,
    lister: Callable[[], list[PortInfo]] = list_ports,
) -> str:
    """``find_port``, retried until the port shows up (a board re-enumerates its USB after a flash).

    Raises:
        DeviceError: still no (single) match after ``timeout`` seconds: the last reason.
    """
    deadline = time.monotonic() + timeout
    while True:
        if port and "://" not in port:
            if os.path.exists(port) or time.monotonic() >= deadline:
                return port  # opening it names the problem if it never came
        else:
            try:
                return find_port(port, vid, pid, serial_number, lister())
            except DeviceError:
                if time.monotonic() >= deadline:
                    raise
        time.sleep(0.25)

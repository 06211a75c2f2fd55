"""``hkdeploy mlperf devices``: the runner's ``devices.yaml`` entry for a DUT on a port.

The runner (``benchmark/runner/device_manager.py``) scans the OS's serial ports and takes those
whose USB VID/PID match an entry; ``check_name`` makes it also send ``name%`` and compare the
``m-name-dut-[...]`` reply, which tells our DUT from another device with the same USB ids (every
J-Link OB has the same VID/PID). ``baud`` is per mode. No TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hkdeploy.errors import UserError
from hkdeploy.fsutil import write_text
from hkdeploy.mlperf import runner_baud


def device_entry(name: str, model_id: str, vid: int, pid: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "dut",
        "check_name": name,
        "baud": runner_baud(model_id),
        "usb": {vid: pid},
    }


def port_ids(port: str) -> tuple[int, int]:
    """USB VID/PID of a serial port as pyserial lists it.

    Raises:
        UserError: the port is not listed or has no USB ids (a pty, a socket URL).
    """
    from hkdeploy.link.discovery import list_ports

    real = str(Path(port).resolve()) if port.startswith("/") else port
    for p in list_ports():
        if p.device in (port, real) and p.vid is not None and p.pid is not None:
            return p.vid, p.pid
    raise UserError(
        f"{port} is not a USB serial port the OS lists with a VID/PID",
        hint="the runner finds DUTs only by USB VID/PID: plug the board in and pass its port "
        "(python -m serial.tools.list_ports -v), or give --vid/--pid",
    )


def render_devices(entries: list[dict[str, Any]]) -> str:
    """YAML with hex USB ids as the runner's own files write them."""
    text = yaml.safe_dump(entries, sort_keys=False, default_flow_style=False)
    for e in entries:
        for vid, pid in e["usb"].items():
            text = text.replace(f"{vid}: {pid}", f"0x{vid:04X}: 0x{pid:04X}")
    return text


def write_devices(path: Path, name: str, model_id: str, vid: int, pid: int) -> Path:
    if not (0 <= vid <= 0xFFFF and 0 <= pid <= 0xFFFF):
        raise UserError(
            f"USB ids out of range: {vid:#x}:{pid:#x}", hint="USB vendor and product ids are 0..0xFFFF"
        )
    return write_text(path, render_devices([device_entry(name, model_id, vid, pid)]))

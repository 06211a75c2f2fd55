"""Port discovery: --port wins; VID/PID + serial number; ambiguity and absence are errors that list ports."""

from __future__ import annotations

import pytest

from hkdeploy.errors import DeviceError
from hkdeploy.link.discovery import PortInfo, find_port, list_ports

PORTS = [
    PortInfo("/dev/ttyACM0", 0x1366, 0x1051, "000123", "J-Link VCOM"),
    PortInfo("/dev/ttyACM1", 0xCAFE, 0x4011, "EVB-A", "TinyUSB CDC"),
    PortInfo("/dev/ttyACM2", 0xCAFE, 0x4011, "EVB-B", "TinyUSB CDC"),
    PortInfo("/dev/ttyS0", None, None, None, "n/a"),
]


def test_explicit_port_wins() -> None:
    assert find_port("socket://127.0.0.1:4000", 0xCAFE, 0x4011, ports=PORTS) == "socket://127.0.0.1:4000"


def test_serial_number_picks_one() -> None:
    assert find_port(None, 0xCAFE, 0x4011, "EVB-B", ports=PORTS) == "/dev/ttyACM2"
    assert find_port(None, 0x1366, 0x1051, ports=PORTS) == "/dev/ttyACM0"


def test_several_matches_list_them() -> None:
    with pytest.raises(DeviceError) as err:
        find_port(None, 0xCAFE, 0x4011, ports=PORTS)
    assert "2 ports match CAFE:4011" in err.value.message
    assert "/dev/ttyACM1" in err.value.message and "/dev/ttyACM2" in err.value.message
    assert "--port" in (err.value.hint or "")


def test_no_match_lists_what_is_there() -> None:
    with pytest.raises(DeviceError) as err:
        find_port(None, 0xCAFE, 0x4011, "EVB-Z", ports=PORTS)
    assert (
        "no serial port matches CAFE:4011 with serial EVB-Z" in err.value.message
        and "J-Link VCOM" in err.value.message
    )
    with pytest.raises(DeviceError, match="no port given"):
        find_port(None, None, None, ports=PORTS)


def test_list_ports_runs_on_this_machine() -> None:
    assert all(isinstance(p, PortInfo) for p in list_ports())


def test_wait_for_port_until_the_board_is_back() -> None:
    from hkdeploy.link.discovery import wait_for_port

    calls = []

    def lister() -> list[PortInfo]:  # the board re-enumerates: absent for the first two looks
        calls.append(1)
        return PORTS[:1] if len(calls) < 3 else PORTS[:2]

    assert wait_for_port(None, 0xCAFE, 0x4011, timeout=5, lister=lister) == "/dev/ttyACM1"
    assert len(calls) == 3
    with pytest.raises(DeviceError, match="no serial port matches CAFE:4011"):
        wait_for_port(None, 0xCAFE, 0x4011, timeout=0.3, lister=lambda: PORTS[:1])
    assert wait_for_port("socket://127.0.0.1:1", None, None, timeout=0.1) == "socket://127.0.0.1:1"

"""The fault injector (a test double) does what each fault promises, reproducibly."""

from __future__ import annotations

import time

import pytest

from hkdeploy.link.framing import Decoder, Packet, encode_packet
from hkdeploy.link.protocol import MsgType
from tests.doubles.faults import FaultyTransport


class Loop:
    """A loopback 'port': what is written can be read back."""

    def __init__(self) -> None:
        self.buf = bytearray()

    @property
    def in_waiting(self) -> int:
        return len(self.buf)

    def write(self, data: bytes) -> int:
        self.buf += data
        return len(data)

    def read(self, size: int = 1) -> bytes:
        out, self.buf = bytes(self.buf[:size]), self.buf[size:]
        return out

    def close(self) -> None:
        pass


def _packets(n: int) -> list[bytes]:
    return [encode_packet(MsgType.RUN, i + 1, bytes(range(200))) for i in range(n)]


def _decoded(data: bytes) -> list[Packet]:
    return [item for item in Decoder().feed(data) if isinstance(item, Packet)]


def test_no_fault_is_transparent() -> None:
    loop = Loop()
    t = FaultyTransport(loop)
    wire = b"".join(_packets(20))
    t.write(wire)
    assert t.read(len(wire)) == wire and t.damaged == 0


def test_byte_faults_are_seeded_and_counted() -> None:
    wire = b"".join(_packets(50))
    outs = []
    for _ in range(2):
        loop = Loop()
        t = FaultyTransport(loop, corrupt=0.01, drop=0.01, duplicate=0.01, seed=3)
        t.write(wire)
        outs.append((bytes(loop.buf), t.damaged))
    assert outs[0] == outs[1] and outs[0][0] != wire
    assert 0.02 * len(wire) < outs[0][1] < 0.05 * len(wire)


def test_truncate_cuts_packets_but_keeps_their_delimiters() -> None:
    loop = Loop()
    packets = _packets(200)
    t = FaultyTransport(loop, truncate=0.3, seed=1)
    for pkt in packets:
        t.write(pkt)
    assert bytes(loop.buf).count(0) == 200  # every delimiter survives: the next packet is intact
    got = _decoded(bytes(loop.buf))
    assert 0.55 * 200 < len(got) < 0.85 * 200 and t.truncated == 200 - len(got)
    assert all(g.payload == bytes(range(200)) for g in got)


def test_truncate_on_reads_too() -> None:
    loop = Loop()
    loop.write(b"".join(_packets(100)))
    t = FaultyTransport(loop, truncate=0.5, seed=2)
    data = b"".join(t.read(7) for _ in range(len(loop.buf) // 7 + 1))
    assert data.count(0) == 100 and len(_decoded(data)) == 100 - t.truncated and t.truncated > 20


def test_delay_is_bounded() -> None:
    t = FaultyTransport(Loop(), delay=1.0, max_delay=0.01, seed=4)
    start = time.monotonic()
    for pkt in _packets(10):
        t.write(pkt)
    assert t.delays == 10 and time.monotonic() - start < 10 * 0.01 + 0.5


def test_reset_is_called_every_n_packets() -> None:
    calls: list[int] = []
    t = FaultyTransport(Loop(), reset_every=7, on_reset=lambda: calls.append(t.packets_written))
    for pkt in _packets(30):
        t.write(pkt)
    assert calls == [6, 13, 20, 27] and t.resets == 4
    with pytest.raises(ValueError, match="on_reset"):
        FaultyTransport(Loop(), reset_every=3)

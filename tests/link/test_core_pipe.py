"""The firmware's link core (C) against the host framing (Python), over a pipe.

The core is built with gcc together with a fake engine and a stdin/stdout platform (both test
doubles in tests/c/); everything else -- COBS, CRC, dispatch, retry cache, chunking, NACKs -- is the
code that runs on the board.
"""

from __future__ import annotations

import os
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hkdeploy.link import CORE_SOURCES
from hkdeploy.link import protocol as p
from hkdeploy.link.framing import Decoder, FrameError, Packet, encode_packet

REPO = Path(__file__).resolve().parents[2]
CORE = [f"firmware/{src}" for src in CORE_SOURCES]
IN_BYTES = 300


@pytest.fixture(scope="session")
def pipe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("core") / "hk_core_pipe"
    cmd = [
        "gcc",
        "-std=c11",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O1",
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
        *[str(REPO / f) for f in CORE],
        str(REPO / "tests/c/fake_engine.c"),
        str(REPO / "tests/c/pipe_main.c"),
        "-o",
        str(exe),
    ]
    subprocess.run(cmd, check=True, timeout=120)
    return exe


class Pipe:
    """A minimal host side for the tests: send one packet, collect what comes back (bounded waits)."""

    def __init__(self, exe: Path, *args: str) -> None:
        self.proc = subprocess.Popen([str(exe), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.decoder = Decoder()
        self.events: list[Packet] = []
        self.seq = 0

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def receive(self, timeout: float = 5.0) -> Packet:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], timeout)
            assert ready, "no answer from the core within the timeout"
            chunk = os.read(fd, 4096)
            assert chunk, "the core exited"
            for item in self.decoder.feed(chunk):
                assert isinstance(item, Packet), item
                if item.is_event:
                    self.events.append(item)
                else:
                    self._pending = item
                    return item

    def request(self, msg: p.MsgType, payload: bytes = b"", flags: int = 0, seq: int | None = None) -> Packet:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.send_raw(encode_packet(msg, seq, payload, flags=flags))
        return self.receive()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        assert self.proc.wait(timeout=5) == 0, "the core crashed or a sanitizer fired"


@pytest.fixture
def pipe(pipe_binary: Path) -> Iterator[Pipe]:
    link = Pipe(pipe_binary)
    yield link
    link.close()


def hello(link: Pipe, host_max: int = 1024) -> p.HelloResponse:
    pkt = link.request(p.MsgType.HELLO, p.HelloRequest(host_max, p.PROTOCOL_VERSION).pack())
    assert pkt.type == p.MsgType.HELLO and pkt.is_response and pkt.status == p.Status.OK
    return p.HelloResponse.unpack(pkt.payload)


def frame(seed: int) -> bytes:
    return bytes((seed * 7 + i * 13) % 256 for i in range(IN_BYTES))


def expected(data: bytes, invokes: int) -> bytes:
    return bytes([invokes % 256, sum(data) % 256, data[0], data[-1]])


def test_hello_describes_the_device(pipe: Pipe) -> None:
    h = hello(pipe, host_max=1024)
    assert (
        h.protocol_version == p.PROTOCOL_VERSION and h.max_payload == 1024 and h.rx_credits == 4
    )  # HK_RX_CREDITS default
    assert h.alloc_status == 0 and h.arena_size == 4096 and h.arena_used == 3000 and h.cpu_hz == 96_000_000
    assert h.counter_kind == 1  # the pipe platform (a test double) claims MCU cycles at 96 MHz
    assert h.model_sha256 == bytes(range(32)) and h.board == "test-double" and h.build_id == "pipe"
    assert h.input.nbytes == IN_BYTES and h.input.dims[:3] == (1, IN_BYTES, 1) and h.input.zero_point == -3
    assert h.output.nbytes == 4 and h.output.scale == 0.00390625
    # the device caps the payload at its own maximum
    assert hello(pipe, host_max=60000).max_payload == 1600


def test_run_in_one_packet(pipe: Pipe) -> None:
    hello(pipe)
    for k in range(1, 6):
        data = frame(k)
        pkt = pipe.request(p.MsgType.RUN, p.RunRequest(0, data).pack())
        assert pkt.status == p.Status.OK
        rsp = p.RunResponse.unpack(pkt.payload)
        assert rsp.data == expected(data, k) and rsp.output_bytes == 4
        # the engine times Invoke() with hk_platform_cycles(); the pipe platform's fake counter
        # advances 48,000 per read (wrapping during the first runs): one Invoke() = 48,000 = 500 us
        assert rsp.cycles == 48000 and rsp.micros == 500


def test_run_chunked_with_credits(pipe: Pipe) -> None:
    h = hello(pipe, host_max=64)  # forces 300 bytes into 60-byte chunks
    assert h.max_payload == 64
    data = frame(3)
    step = h.max_payload - 4
    for offset in range(0, IN_BYTES, step):
        last = offset + step >= IN_BYTES
        pkt = pipe.request(
            p.MsgType.RUN,
            p.RunRequest(offset, data[offset : offset + step]).pack(),
            flags=0 if last else p.Flag.MORE,
        )
        assert pkt.status == p.Status.OK
        if not last:
            ack = p.SetInputResponse.unpack(pkt.payload)
            assert ack.received == offset + step and ack.credits == 4
    assert p.RunResponse.unpack(pkt.payload).data == expected(data, 1)
    # a payload above the negotiated size is refused, not buffered
    big = pipe.request(p.MsgType.RUN, p.RunRequest(0, data).pack())
    assert big.type == p.MsgType.NACK and big.status == p.Status.PAYLOAD_TOO_BIG


def test_retry_with_same_seq_is_answered_from_cache(pipe: Pipe) -> None:
    hello(pipe)
    req = p.RunRequest(0, frame(1)).pack()
    first = pipe.request(p.MsgType.RUN, req, seq=100)
    again = pipe.request(p.MsgType.RUN, req, flags=p.Flag.RETRY, seq=100)
    assert again == first  # same bytes back ...
    nxt = pipe.request(p.MsgType.RUN, req, seq=101)
    # ... and the engine ran once for the two: the next RUN is only the second invoke
    assert p.RunResponse.unpack(first.payload).data[0] == 1 and p.RunResponse.unpack(nxt.payload).data[0] == 2


def test_corruption_is_nacked_and_the_stream_recovers(pipe: Pipe) -> None:
    hello(pipe)
    wire = bytearray(encode_packet(p.MsgType.RUN, 7, p.RunRequest(0, frame(2)).pack()))
    wire[20] ^= 0x40
    pipe.send_raw(bytes(wire))
    nack = pipe.receive()
    assert nack.type == p.MsgType.NACK and nack.status == p.Status.BAD_CRC
    pipe.send_raw(b"\x05garbage\x00")
    assert pipe.receive().type == p.MsgType.NACK
    pipe.send_raw(b"\x01" * 5000 + b"\x00")  # an endless frame is dropped, never overflows
    assert pipe.receive().status == p.Status.BAD_LENGTH
    ok = pipe.request(p.MsgType.RUN, p.RunRequest(0, frame(2)).pack(), seq=7)
    assert ok.status == p.Status.OK and p.RunResponse.unpack(ok.payload).data == expected(frame(2), 1)


def test_perf_and_split_commands(pipe: Pipe) -> None:
    hello(pipe)
    data = frame(9)
    assert pipe.request(p.MsgType.SET_INPUT, p.SetInputRequest(0, data).pack()).status == p.Status.OK
    inv = p.InvokeResponse.unpack(pipe.request(p.MsgType.INVOKE).payload)
    assert inv.cycles == 48000 and inv.micros == 500
    out = p.GetOutputResponse.unpack(
        pipe.request(p.MsgType.GET_OUTPUT, p.GetOutputRequest(1, 10).pack()).payload
    )
    assert out.offset == 1 and out.data == expected(data, 1)[1:]
    perf = p.PerfResponse.unpack(pipe.request(p.MsgType.PERF, p.PerfRequest(2, 5).pack()).payload)
    assert (
        perf.runs == 5
        and perf.cycles_min <= perf.cycles_median <= perf.cycles_max
        and perf.cpu_hz == 96_000_000
    )
    assert (perf.us_min, perf.us_median, perf.us_max) == tuple(
        c * 1_000_000 // perf.cpu_hz for c in (perf.cycles_min, perf.cycles_median, perf.cycles_max)
    )
    assert pipe.request(p.MsgType.PERF, p.PerfRequest(0, 0).pack()).status == p.Status.BAD_REQUEST
    bad = pipe.request(p.MsgType.SET_INPUT, p.SetInputRequest(IN_BYTES - 2, b"abcd").pack())
    assert bad.status == p.Status.BAD_OFFSET
    unknown = pipe.request(0x42)  # type: ignore[arg-type]
    assert unknown.type == p.MsgType.NACK and unknown.status == p.Status.UNKNOWN_TYPE


def test_reset_reinitialises(pipe: Pipe) -> None:
    hello(pipe)
    pipe.request(p.MsgType.RUN, p.RunRequest(0, frame(1)).pack())
    assert pipe.request(p.MsgType.RESET).status == p.Status.OK
    hello(pipe)
    rsp = p.RunResponse.unpack(pipe.request(p.MsgType.RUN, p.RunRequest(0, frame(1)).pack()).payload)
    assert rsp.data[0] == 1  # the engine started over


def test_allocation_failure_is_reported_not_hung(pipe_binary: Path) -> None:
    link = Pipe(pipe_binary, "2")
    try:
        h = hello(link)
        assert h.alloc_status == p.Status.ENGINE_ALLOCATE
        run = link.request(p.MsgType.RUN, p.RunRequest(0, frame(1)).pack())
        assert run.status == p.Status.ENGINE_NOT_READY
        assert p.STATUS_TEXT[run.status][1]  # the host can print a hint
        assert any(b"AllocateTensors failed" in e.payload for e in link.events)
    finally:
        link.close()


def test_frame_errors_type() -> None:
    assert isinstance(Decoder().feed(b"\x02\x00")[0], FrameError)

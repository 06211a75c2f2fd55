"""Seed inputs for tests/fuzz/fuzz_core.c (``make fuzz`` writes them into tests/fuzz/corpus/).

Each seed is one harness input: a mode byte, then either raw wire bytes or length-prefixed requests
(header + payload; the harness adds CRC and COBS). The seeds walk the commands a host really sends,
so the fuzzer starts from the deep states (negotiated payload, chunked RUN, retries, RESET).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from hkdeploy.link import protocol as p
from hkdeploy.link.framing import encode_packet

IN_BYTES = 300  # the fake engine's input tensor (tests/c/fake_engine.c)


def req(msg: int, seq: int, payload: bytes = b"", flags: int = 0) -> bytes:
    body = struct.pack(p.HEADER_FORMAT, msg, flags, seq, 0, len(payload)) + payload
    return struct.pack("<H", len(body)) + body


def hello(seq: int, host_max: int) -> bytes:
    return req(p.MsgType.HELLO, seq, p.HelloRequest(host_max, p.PROTOCOL_VERSION).pack())


def seeds() -> dict[str, bytes]:
    frame = bytes(range(IN_BYTES % 256)) + bytes(IN_BYTES - IN_BYTES % 256)
    run_one = req(p.MsgType.RUN, 2, p.RunRequest(0, frame).pack())
    chunks = b"".join(
        req(
            p.MsgType.RUN,
            10 + k,
            p.RunRequest(k * 60, frame[k * 60 : k * 60 + 60]).pack(),
            0 if k == 4 else 2,
        )
        for k in range(5)
    )
    split = (
        req(p.MsgType.SET_INPUT, 3, p.SetInputRequest(0, frame).pack())
        + req(p.MsgType.INVOKE, 4)
        + req(p.MsgType.GET_OUTPUT, 5, p.GetOutputRequest(0, 64).pack())
        + req(p.MsgType.PERF, 6, p.PerfRequest(2, 5).pack())
    )
    return {
        "hello": b"\x01" + hello(1, 1024),
        "run": b"\x01" + hello(1, 1024) + run_one + req(p.MsgType.RUN, 2, p.RunRequest(0, frame).pack(), 8),
        "chunks": b"\x01" + hello(1, 64) + chunks,
        "split": b"\x01" + hello(1, 1024) + split,
        "reset": b"\x01" + hello(1, 1024) + req(p.MsgType.RESET, 7) + run_one,
        "not_ready": b"\x03" + hello(1, 1024) + run_one,
        "raw": b"\x00"
        + encode_packet(p.MsgType.HELLO, 1, p.HelloRequest(512, p.PROTOCOL_VERSION).pack())
        + b"\x05garbage\x00"
        + encode_packet(p.MsgType.INVOKE, 2),
    }


def main(out: str) -> int:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (folder / f"seed_{name}").write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

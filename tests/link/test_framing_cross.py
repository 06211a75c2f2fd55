"""C <-> Python framing: packets the host encodes decode in the firmware's C codec and vice versa.

``tests/c/codec_main.c`` (the firmware's hk_cobs.c + hk_crc32.c as a stdin -> stdout filter) decodes
every frame, checks its CRC, and encodes each valid packet again with the C encoder. The stream fed
to it comes from ``hkdeploy.link.framing.encode_packet`` (the ``cobs`` package and zlib), with
damaged frames mixed in; COBS is canonical on both sides, so the C output must equal the valid
Python packets byte for byte, and the Python decoder must read it back.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from cobs import cobs

from hkdeploy.link import protocol as p
from hkdeploy.link.framing import Decoder, Packet, encode_packet

REPO = Path(__file__).resolve().parents[2]

# Payload sizes around the COBS block boundaries (254 data bytes per block) and the firmware's maximum.
EDGE_SIZES = (0, 1, 2, 242, 243, 246, 247, 253, 254, 255, 500, 501, 502, 508, 1250, 1600)


@pytest.fixture(scope="session")
def codec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("codec") / "codec"
    subprocess.run(
        [
            "gcc",
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O1",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all",
            str(REPO / "tests/c/codec_main.c"),
            str(REPO / "firmware/core/hk_cobs.c"),
            str(REPO / "firmware/core/hk_crc32.c"),
            "-o",
            str(exe),
        ],
        check=True,
        timeout=120,
    )
    return exe


def payload(rng: random.Random, size: int) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(size)  # all zeros: one COBS block per byte
    if kind == 1:
        return bytes(rng.randrange(1, 256) for _ in range(size))  # no zeros: full 254-byte blocks
    if kind == 2:
        return bytes(rng.choice((0, rng.randrange(256))) for _ in range(size))
    return rng.randbytes(size)


def full_block_at_end(rng: random.Random, blocks: int) -> bytes:
    """A packet whose body ends with a run of exactly ``254 * blocks`` non-zero bytes.

    Canonical COBS closes such a run with no empty block after it; an encoder that adds one still
    decodes, but would not be byte-identical (found by this test in an earlier C encoder).
    """
    while True:
        size = 254 * blocks - 4 + rng.randrange(1, 20)
        data = bytearray(rng.randrange(1, 256) for _ in range(size))
        data[size - (254 * blocks - 4) - 1] = 0  # the last zero of the body, 254*blocks bytes from its end
        wire = encode_packet(0x05, 0x0101, bytes(data), 0x02, 0x0101)
        if 0 not in cobs.decode(wire[:-1])[-254 * blocks :]:  # the CRC has no zero byte either
            return wire


def damage(rng: random.Random, wire: bytes) -> bytes:
    """One flipped bit inside the frame, never creating a delimiter (the frame stays one frame)."""
    raw = bytearray(wire)
    while True:
        i = rng.randrange(len(raw) - 1)
        flipped = raw[i] ^ (1 << rng.randrange(8))
        if flipped:
            raw[i] = flipped
            return bytes(raw)


def test_python_packets_decode_in_c_and_c_packets_decode_in_python(codec: Path) -> None:
    rng = random.Random(4)
    valid: list[bytes] = []
    stream = bytearray()
    damaged = 0
    sizes = list(EDGE_SIZES) + [rng.randrange(0, 1700) for _ in range(300)]
    for i, size in enumerate(sizes):
        wire = encode_packet(
            rng.randrange(256),
            rng.randrange(0x10000),
            payload(rng, size),
            rng.randrange(256),
            rng.randrange(0x10000),
        )
        if i % 5 == 4:
            stream += damage(rng, wire)
            damaged += 1
        else:
            valid.append(wire)
            stream += wire
        if i % 7 == 0:
            stream += b"\x00"  # line idle between packets is not a frame
    for blocks in (1, 2, 1, 3):
        valid.append(full_block_at_end(rng, blocks))
        stream += valid[-1]
    proc = subprocess.run([str(codec)], input=bytes(stream), capture_output=True, timeout=60, check=True)
    assert proc.stderr.decode().strip() == f"dropped {damaged}"
    assert proc.stdout == b"".join(valid)  # the C encoder writes exactly what the Python encoder wrote
    decoded = Decoder().feed(proc.stdout)
    expected = Decoder().feed(b"".join(valid))
    assert all(isinstance(d, Packet) for d in decoded) and decoded == expected
    assert len(decoded) == len(valid) > 250


def test_c_drops_truncated_and_garbage_frames(codec: Path) -> None:
    good = encode_packet(p.MsgType.RUN, 9, bytes(range(256)) * 2)
    stream = good[:40] + b"\x00" + b"\x05\x01\x02\x00" + b"\xff" * 100 + b"\x00" + good
    proc = subprocess.run([str(codec)], input=stream, capture_output=True, timeout=60, check=True)
    assert proc.stdout == good and proc.stderr.decode().strip() == "dropped 3"

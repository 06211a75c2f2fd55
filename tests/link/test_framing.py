"""Host framing: COBS + CRC-32 packets, the resynchronising stream decoder (incl. a hypothesis fuzz)."""

from __future__ import annotations

import random
import struct
import zlib

from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from hkdeploy.link import protocol as p
from hkdeploy.link.framing import Decoder, FrameError, Packet, decode_frame, encode_packet, wire_size


def hello() -> p.HelloResponse:
    """A realistic HELLO answer (190 bytes, zeros and non-zeros) as a payload."""
    tensor = p.WireTensor(9, 3, 0, (1, 1250, 1, 0, 0, 0), 0.0625, -55, 1250)
    out = p.WireTensor(9, 2, 0, (1, 4, 0, 0, 0, 0), 0.00390625, -128, 4)
    return p.HelloResponse(
        1,
        512,
        4,
        0,
        15904,
        12720,
        17184,
        192_000_000,
        bytes(range(32)),
        tensor,
        out,
        "apollo4p_evb",
        "0123abc",
        1,
        12,
        3,
    )


def test_encode_decode_one_packet() -> None:
    wire = encode_packet(p.MsgType.HELLO, 7, hello().pack(), flags=p.Flag.RESPONSE)
    assert wire[-1] == 0 and 0 not in wire[:-1]
    assert len(wire) <= wire_size(p.HelloResponse.SIZE)
    (pkt,) = Decoder().feed(wire)
    assert isinstance(pkt, Packet) and pkt.type == p.MsgType.HELLO and pkt.seq == 7 and pkt.is_response
    assert p.HelloResponse.unpack(pkt.payload) == hello()


def test_bad_crc_and_truncation_resync() -> None:
    good = [encode_packet(p.MsgType.RUN, i, bytes([i]) * 40) for i in range(5)]
    corrupted = bytearray(good[1])
    corrupted[10] ^= 0x55
    truncated = good[3][:20] + b"\x00"
    stream = good[0] + bytes(corrupted) + good[2] + truncated + good[4]
    out = Decoder().feed(stream)
    packets = [o for o in out if isinstance(o, Packet)]
    errors = [o for o in out if isinstance(o, FrameError)]
    assert [pk.seq for pk in packets] == [0, 2, 4]
    assert len(errors) == 2 and {e.status for e in errors} <= {p.Status.BAD_CRC, p.Status.BAD_LENGTH}


def test_length_field_mismatch_is_reported() -> None:
    body = struct.pack(p.HEADER_FORMAT, 1, 0, 1, 0, 9) + b"abc"
    body += struct.pack("<I", zlib.crc32(body))
    err = decode_frame(cobs.encode(body))
    assert isinstance(err, FrameError) and err.status == p.Status.BAD_LENGTH


def test_garbage_without_delimiters_is_bounded() -> None:
    d = Decoder(max_frame=1000)
    assert d.feed(b"\x01" * 5000) == []
    assert len(d._buf) <= 1000
    out = d.feed(b"\x00" + encode_packet(p.MsgType.INVOKE, 3))
    assert isinstance(out[0], FrameError) and isinstance(out[1], Packet) and out[1].seq == 3


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 700))
def test_decoder_never_raises_on_arbitrary_bytes(data: bytes, chunk: int) -> None:
    d = Decoder(max_frame=512)
    out = []
    for i in range(0, len(data), chunk):
        out += d.feed(data[i : i + chunk])
    assert all(isinstance(o, Packet | FrameError) for o in out)
    assert len(out) <= data.count(0)  # at most one result per delimiter
    assert len(d._buf) <= 512


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.binary(max_size=2000),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
)
def test_encode_decode_round_trip(type_: int, seq: int, payload: bytes, flags: int, status: int) -> None:
    wire = encode_packet(type_, seq, payload, flags=flags, status=status)
    assert wire.endswith(b"\x00") and 0 not in wire[:-1] and len(wire) <= wire_size(len(payload))
    assert decode_frame(wire[:-1]) == Packet(type_, flags, seq, status, payload)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=300)), max_size=6),
    st.lists(st.binary(max_size=40), max_size=7),  # garbage, zeros included
    st.integers(1, 64),
)
def test_valid_packets_survive_garbage_and_any_split(
    packets: list[tuple[int, int, bytes]], garbage: list[bytes], chunk: int
) -> None:
    stream = b""
    for i, (t, seq, payload) in enumerate(packets):
        junk = garbage[i] if i < len(garbage) else b""
        # garbage ends with a delimiter so it forms its own (bad) frame and cannot glue onto a packet
        stream += (junk + b"\x00" if junk else b"") + encode_packet(t, seq, payload)
    d = Decoder()
    out = []
    for i in range(0, len(stream), chunk):
        out += d.feed(stream[i : i + chunk])
    got = [(o.type, o.seq, o.payload) for o in out if isinstance(o, Packet)]
    assert got == packets


def test_random_corruption_never_yields_a_wrong_packet() -> None:
    rng = random.Random(0)
    sent = [encode_packet(p.MsgType.RUN, i, rng.randbytes(200)) for i in range(300)]
    stream = bytearray(b"".join(sent))
    for _ in range(len(stream) // 100):  # 1 % of the bytes flipped
        stream[rng.randrange(len(stream))] ^= 1 << rng.randrange(8)
    originals = {i: decode_frame(s[:-1]) for i, s in enumerate(sent)}
    for pkt in Decoder().feed(bytes(stream)):
        if isinstance(pkt, Packet):
            assert originals[pkt.seq] == pkt  # CRC-32 lets no corrupted packet through

"""Packet framing: COBS-encoded ``header + payload + CRC-32`` delimited by 0x00.

``encode_packet`` builds the bytes for the wire; ``Decoder.feed`` takes whatever bytes arrived
(any split, garbage included) and returns the packets and errors it found. A bad CRC, a bad COBS
block or a length mismatch drops that frame only: decoding resumes at the next delimiter, so the
stream resynchronises by itself. The decoder never raises on input bytes and never buffers more
than ``max_frame`` bytes of an unterminated frame.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from cobs import cobs

from hkdeploy.link.protocol import CRC_SIZE, DELIMITER, HEADER_FORMAT, HEADER_SIZE, Flag, MsgType, Status


@dataclass(frozen=True)
class Packet:
    """One decoded packet."""

    type: int
    flags: int
    seq: int
    status: int
    payload: bytes

    @property
    def is_response(self) -> bool:
        return bool(self.flags & Flag.RESPONSE)

    @property
    def is_event(self) -> bool:
        return bool(self.flags & Flag.EVENT)

    def describe(self) -> str:
        try:
            name = MsgType(self.type).name
        except ValueError:
            name = f"type 0x{self.type:02x}"
        return f"{name} seq {self.seq} flags 0x{self.flags:02x} status {self.status} ({len(self.payload)} B)"


@dataclass(frozen=True)
class FrameError:
    """A frame that could not be decoded (and was dropped)."""

    status: Status  # BAD_CRC or BAD_LENGTH
    detail: str
    raw_size: int


def encode_packet(type: int, seq: int, payload: bytes = b"", flags: int = 0, status: int = 0) -> bytes:
    """The on-wire bytes of one packet (ends with the delimiter)."""
    if not 0 <= seq <= 0xFFFF:
        raise ValueError(f"seq {seq} out of range")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes is too large for one packet")
    body = struct.pack(HEADER_FORMAT, type, flags, seq, status, len(payload)) + payload
    body += struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    return cobs.encode(body) + bytes([DELIMITER])


def wire_size(payload_len: int) -> int:
    """Bytes one packet with ``payload_len`` payload bytes takes on the wire (COBS worst case)."""
    body = HEADER_SIZE + payload_len + CRC_SIZE
    return body + (body + 253) // 254 + 1


def decode_frame(frame: bytes) -> Packet | FrameError:
    """Decode one COBS frame (without its delimiter)."""
    try:
        body = cobs.decode(frame)
    except cobs.DecodeError as exc:
        return FrameError(Status.BAD_CRC, f"bad COBS encoding: {exc}", len(frame))
    if len(body) < HEADER_SIZE + CRC_SIZE:
        return FrameError(
            Status.BAD_LENGTH, f"frame of {len(body)} bytes is shorter than a header", len(frame)
        )
    (crc,) = struct.unpack_from("<I", body, len(body) - CRC_SIZE)
    if zlib.crc32(body[:-CRC_SIZE]) & 0xFFFFFFFF != crc:
        return FrameError(Status.BAD_CRC, "CRC mismatch", len(frame))
    type_, flags, seq, status, length = struct.unpack_from(HEADER_FORMAT, body)
    payload = body[HEADER_SIZE:-CRC_SIZE]
    if len(payload) != length:
        return FrameError(
            Status.BAD_LENGTH, f"length field {length} but {len(payload)} payload bytes", len(frame)
        )
    return Packet(type_, flags, seq, status, bytes(payload))


class Decoder:
    """Streaming decoder: feed it bytes as they arrive; it returns packets and dropped-frame errors.

    Args:
        max_frame: frames longer than this are dropped (with a BAD_LENGTH error) without being buffered,
            so a stream of garbage without delimiters cannot grow memory.
    """

    def __init__(self, max_frame: int = 70000) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[Packet | FrameError]:
        out: list[Packet | FrameError] = []
        start = 0
        while True:
            end = data.find(bytes([DELIMITER]), start)
            chunk = data[start:] if end < 0 else data[start:end]
            if not self._overflow:
                if len(self._buf) + len(chunk) > self.max_frame:
                    self._overflow = True
                    self._buf.clear()
                else:
                    self._buf += chunk
            if end < 0:
                return out
            if self._overflow:
                out.append(FrameError(Status.BAD_LENGTH, f"frame longer than {self.max_frame} bytes", -1))
            elif self._buf:  # empty frames (back-to-back delimiters) are line idle, not errors
                out.append(decode_frame(bytes(self._buf)))
            self._buf.clear()
            self._overflow = False
            start = end + 1

    def reset(self) -> None:
        """Forget any partial frame (e.g. after reopening the port)."""
        self._buf.clear()
        self._overflow = False

"""The hkdeploy wire protocol, version 3: constants, status codes and message layouts.

GENERATED from firmware/protocol/spec.yaml by ``python -m tools.gen_protocol`` -- do not edit.
All integers are little-endian.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, ClassVar

PROTOCOL_VERSION = 3
DELIMITER = 0
HEADER_FORMAT = "<BBHHH"
HEADER_SIZE = 8
CRC_SIZE = 4
MIN_PAYLOAD = 64
DEFAULT_PAYLOAD = 256


class MsgType(IntEnum):
    """Message types."""

    HELLO = 0x01  # Handshake: negotiates the payload size and describes firmware, board and model.
    SET_INPUT = 0x02  # Write a chunk of the input tensor at offset (MORE set on all but the last chunk).
    INVOKE = 0x03  # Run one inference on the current input.
    GET_OUTPUT = 0x04  # Read a chunk of the output tensor.
    RUN = 0x05  # Input chunks in; the last chunk runs Invoke() and the answer carries cycles and the output.
    PERF = 0x06  # Time Invoke(): W warm-up runs, then N measured runs on the current input.
    RESET = 0x07  # Soft reset: the device answers, then re-initialises its engine and link state.
    LOG = 0x08  # Device text (EVENT flag, seq 0), e.g. TFLM error messages.
    STATS = 0x09  # The link core's counters since power-on (a RESET keeps them): how many frames, retries and Invoke() calls the device saw.
    PROFILE = 0x0A  # Per-operator cycles of one Invoke() on the current input. first_op 0 runs it and answers the first entries; first_op > 0 pages through that run's entries.
    TENSOR = 0x0B  # Run Invoke() on the current input and answer a chunk of operator op_index's first output tensor (for the per-layer diff).
    NACK = 0x7F  # The device could not accept a packet; status says why. seq echoes the request when known.


class Flag(IntFlag):
    """Header flags."""

    NONE = 0
    RESPONSE = 0x01  # device -> host answer to the request with the same seq
    MORE = 0x02  # more chunks of this tensor follow
    EVENT = 0x04  # unsolicited device -> host packet (LOG); seq 0
    RETRY = 0x08  # host retransmission of a request (same seq): answer from the cache


class Feature(IntFlag):
    """HELLO's ``features``: what the engine can do besides running the model."""

    NONE = 0
    PROFILE = 0x0001  # PROFILE: per-operator cycles of one Invoke()
    TENSOR = 0x0002  # TENSOR: an operator's output tensor, for the per-layer diff


class Status(IntEnum):
    """Status codes (engine statuses keep their hk_engine.h numbers)."""

    OK = 0
    ENGINE_MODEL_SCHEMA = 1
    ENGINE_ALLOCATE = 2
    ENGINE_INVOKE = 3
    ENGINE_NOT_READY = 4
    ENGINE_MODEL_TOO_BIG = 5
    ENGINE_ARENA_TOO_BIG = 6
    ENGINE_IO = 7
    ENGINE_UNSUPPORTED = 8
    ENGINE_INIT_FAULT = 9
    BAD_CRC = 16
    BAD_LENGTH = 17
    UNKNOWN_TYPE = 18
    BAD_OFFSET = 19
    PAYLOAD_TOO_BIG = 20
    BUSY = 21
    BAD_REQUEST = 22
    VERSION = 23


# code -> (what happened, what to try)
STATUS_TEXT: dict[int, tuple[str, str]] = {
    0: (
        "ok",
        "",
    ),
    1: (
        "the firmware cannot read this model (flatbuffer schema/version)",
        "re-export with this hkdeploy and rebuild the firmware",
    ),
    2: (
        "AllocateTensors failed: the arena is too small or an op is missing",
        "rebuild with the arena size from model_config.h (hkdeploy export); check the op resolver",
    ),
    3: (
        "Invoke() failed",
        "read the device LOG messages (hkdeploy -v) for the kernel's error",
    ),
    4: (
        "the engine failed to initialise earlier; nothing can run",
        "check HELLO's alloc_status and the LOG messages, then rebuild and flash",
    ),
    5: (
        "the model does not fit the board's MRAM/flash",
        "shrink the model or pick a board with more MRAM",
    ),
    6: (
        "the tensor arena does not fit the board's SRAM",
        "shrink activations or pick a board with more SRAM",
    ),
    7: (
        "the virtual EVB could not load the model or the TFLM runtime",
        "run hkdeploy build again; check the host port's stderr",
    ),
    8: (
        "this engine cannot do that (no per-operator profile or tensor capture)",
        "the virtual EVB's engine (the tflite-micro Python runtime) has no per-operator timer: profile on --board qemu_m4 / qemu_m55 or a board",
    ),
    9: (
        "the engine crashed during initialisation on the previous boot (the device faulted or was reset inside AllocateTensors); not retried",
        "read the fault LOG (hkdeploy -v: kind and PC); rebuild with the arena size from model_config.h and check the op resolver; RESET (or the reset button) tries the init once more",
    ),
    16: (
        "a packet arrived damaged (bad CRC or COBS encoding)",
        "line noise or a wrong baud rate: check link.baud and the cable",
    ),
    17: (
        "a packet's length field does not match its size",
        "a truncated packet: check for a flaky USB/UART connection",
    ),
    18: (
        "the device does not know this message type",
        "firmware and hkdeploy protocol versions differ: rebuild and flash the firmware",
    ),
    19: (
        "a tensor chunk is outside the tensor, leaves a gap, or the last chunk does not complete it",
        "the host and firmware disagree on the tensor size (re-export and rebuild), or a chunk was lost: resend the tensor from offset 0",
    ),
    20: (
        "the payload exceeds the negotiated maximum",
        "send HELLO first; keep chunks within max_payload",
    ),
    21: (
        "the device is busy with another request",
        "wait for the previous answer before sending more than rx_credits chunks",
    ),
    22: (
        "the request's fields are invalid",
        "protocol mismatch: rebuild and flash the firmware with this hkdeploy",
    ),
    23: (
        "the device speaks another protocol version",
        "rebuild and flash the firmware with this hkdeploy",
    ),
}


def _s(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def _b(text: str, size: int) -> bytes:
    return text.encode("utf-8")[:size]


@dataclass(frozen=True)
class WireOp:
    """One operator of a PROFILE answer."""

    builtin_code: int  # TFLite BuiltinOperator of the operator
    reserved: int
    cycles: int  # what the platform's counter advanced during the operator's Invoke
    FORMAT: ClassVar[str] = "<HHI"
    SIZE: ClassVar[int] = 8  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.builtin_code,
            self.reserved,
            self.cycles,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> WireOp:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            builtin_code=next(it),
            reserved=next(it),
            cycles=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> WireOp:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class WireTensor:
    """A tensor as HELLO describes it."""

    dtype: int  # TFLite TensorType (9 int8, 3 uint8, 7 int16, 0 float32)
    ndim: int
    reserved: int
    dims: tuple[int, ...]
    scale: float
    zero_point: int
    nbytes: int  # size of the tensor in bytes
    FORMAT: ClassVar[str] = "<BBH6ifiI"
    SIZE: ClassVar[int] = 40  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.dtype,
            self.ndim,
            self.reserved,
            *self.dims,
            self.scale,
            self.zero_point,
            self.nbytes,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> WireTensor:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            dtype=next(it),
            ndim=next(it),
            reserved=next(it),
            dims=tuple(next(it) for _ in range(6)),
            scale=next(it),
            zero_point=next(it),
            nbytes=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> WireTensor:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class HelloRequest:
    """HELLO request."""

    host_max_payload: int
    protocol_version: int
    FORMAT: ClassVar[str] = "<HH"
    SIZE: ClassVar[int] = 4  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.host_max_payload,
            self.protocol_version,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> HelloRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            host_max_payload=next(it),
            protocol_version=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> HelloRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class HelloResponse:
    """HELLO response."""

    protocol_version: int
    max_payload: int  # min(device, host) maximum payload
    rx_credits: int  # requests the host may have unanswered at once (each answer returns one)
    alloc_status: int  # engine status of AllocateTensors (0 = ok)
    arena_size: int
    arena_used: int
    model_size: int
    cpu_hz: int  # counts per second of the platform's counter (cycles -> microseconds; 0 if unknown)
    model_sha256: bytes
    input: WireTensor
    output: WireTensor
    board: str
    build_id: str
    counter_kind: int  # what cycles count (hk_platform.h hk_counter_kind_t): 0 none, 1 MCU core cycles, 2 host nanoseconds (virtual EVB), 3 SysTick ticks of an emulated Cortex-M (QEMU -icount)
    op_count: int  # operators in the model's main subgraph (0 if the engine did not initialise)
    features: int  # what the engine can do besides running the model: bit 0 PROFILE, bit 1 TENSOR
    FORMAT: ClassVar[str] = "<HHHhIIII32sBBH6ifiIBBH6ifiI24s24sHHH"
    SIZE: ClassVar[int] = 190  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.protocol_version,
            self.max_payload,
            self.rx_credits,
            self.alloc_status,
            self.arena_size,
            self.arena_used,
            self.model_size,
            self.cpu_hz,
            bytes(self.model_sha256),
            *self.input.values(),
            *self.output.values(),
            _b(self.board, 24),
            _b(self.build_id, 24),
            self.counter_kind,
            self.op_count,
            self.features,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> HelloResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            protocol_version=next(it),
            max_payload=next(it),
            rx_credits=next(it),
            alloc_status=next(it),
            arena_size=next(it),
            arena_used=next(it),
            model_size=next(it),
            cpu_hz=next(it),
            model_sha256=bytes(next(it)),
            input=WireTensor.from_values(it),
            output=WireTensor.from_values(it),
            board=_s(next(it)),
            build_id=_s(next(it)),
            counter_kind=next(it),
            op_count=next(it),
            features=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> HelloResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class SetInputRequest:
    """SET_INPUT request."""

    offset: int
    data: bytes = b""
    FORMAT: ClassVar[str] = "<I"
    SIZE: ClassVar[int] = 4  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.offset,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> SetInputRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            offset=next(it),
            data=bytes(tail),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values()) + bytes(self.data)

    @classmethod
    def unpack(cls, payload: bytes) -> SetInputRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short)."""
        if len(payload) < cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected at least {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class SetInputResponse:
    """SET_INPUT response."""

    received: int  # bytes of the input tensor written so far
    credits: int  # the window: requests the host may have unanswered at once
    FORMAT: ClassVar[str] = "<IH"
    SIZE: ClassVar[int] = 6  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.received,
            self.credits,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> SetInputResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            received=next(it),
            credits=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> SetInputResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class InvokeRequest:
    """INVOKE request."""

    FORMAT: ClassVar[str] = "<"
    SIZE: ClassVar[int] = 0  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return []

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> InvokeRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls()

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> InvokeRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class InvokeResponse:
    """INVOKE response."""

    cycles: int
    micros: int
    FORMAT: ClassVar[str] = "<II"
    SIZE: ClassVar[int] = 8  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.cycles,
            self.micros,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> InvokeResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            cycles=next(it),
            micros=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> InvokeResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class GetOutputRequest:
    """GET_OUTPUT request."""

    offset: int
    length: int
    FORMAT: ClassVar[str] = "<IH"
    SIZE: ClassVar[int] = 6  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.offset,
            self.length,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> GetOutputRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            offset=next(it),
            length=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> GetOutputRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class GetOutputResponse:
    """GET_OUTPUT response."""

    offset: int
    data: bytes = b""
    FORMAT: ClassVar[str] = "<I"
    SIZE: ClassVar[int] = 4  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.offset,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> GetOutputResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            offset=next(it),
            data=bytes(tail),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values()) + bytes(self.data)

    @classmethod
    def unpack(cls, payload: bytes) -> GetOutputResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short)."""
        if len(payload) < cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected at least {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class RunRequest:
    """RUN request."""

    offset: int
    data: bytes = b""
    FORMAT: ClassVar[str] = "<I"
    SIZE: ClassVar[int] = 4  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.offset,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> RunRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            offset=next(it),
            data=bytes(tail),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values()) + bytes(self.data)

    @classmethod
    def unpack(cls, payload: bytes) -> RunRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short)."""
        if len(payload) < cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected at least {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class RunResponse:
    """RUN response."""

    cycles: int
    micros: int
    output_bytes: int  # whole output size; fetch the rest with GET_OUTPUT if larger than data
    data: bytes = b""
    FORMAT: ClassVar[str] = "<III"
    SIZE: ClassVar[int] = 12  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.cycles,
            self.micros,
            self.output_bytes,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> RunResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            cycles=next(it),
            micros=next(it),
            output_bytes=next(it),
            data=bytes(tail),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values()) + bytes(self.data)

    @classmethod
    def unpack(cls, payload: bytes) -> RunResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short)."""
        if len(payload) < cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected at least {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class PerfRequest:
    """PERF request."""

    warmup: int
    runs: int
    FORMAT: ClassVar[str] = "<HH"
    SIZE: ClassVar[int] = 4  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.warmup,
            self.runs,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> PerfRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            warmup=next(it),
            runs=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> PerfRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class PerfResponse:
    """PERF response."""

    runs: int
    cycles_min: int
    cycles_median: int
    cycles_max: int
    cpu_hz: int  # clock that converts cycles to time
    us_min: int  # cycles_min in microseconds (cycles * 1e6 / cpu_hz, 0 if cpu_hz is 0)
    us_median: int
    us_max: int
    FORMAT: ClassVar[str] = "<HIIIIIII"
    SIZE: ClassVar[int] = 30  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.runs,
            self.cycles_min,
            self.cycles_median,
            self.cycles_max,
            self.cpu_hz,
            self.us_min,
            self.us_median,
            self.us_max,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> PerfResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            runs=next(it),
            cycles_min=next(it),
            cycles_median=next(it),
            cycles_max=next(it),
            cpu_hz=next(it),
            us_min=next(it),
            us_median=next(it),
            us_max=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> PerfResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class ResetRequest:
    """RESET request."""

    FORMAT: ClassVar[str] = "<"
    SIZE: ClassVar[int] = 0  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return []

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> ResetRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls()

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> ResetRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class ResetResponse:
    """RESET response."""

    FORMAT: ClassVar[str] = "<"
    SIZE: ClassVar[int] = 0  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return []

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> ResetResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls()

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> ResetResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class LogRequest:
    """LOG request."""

    FORMAT: ClassVar[str] = "<"
    SIZE: ClassVar[int] = 0  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return []

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> LogRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls()

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> LogRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class LogResponse:
    """LOG response."""

    text: str = ""
    FORMAT: ClassVar[str] = "<"
    SIZE: ClassVar[int] = 0  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return []

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> LogResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            text=_s(tail),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values()) + self.text.encode()

    @classmethod
    def unpack(cls, payload: bytes) -> LogResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short)."""
        if len(payload) < cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected at least {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class StatsRequest:
    """STATS request."""

    FORMAT: ClassVar[str] = "<"
    SIZE: ClassVar[int] = 0  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return []

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> StatsRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls()

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> StatsRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class StatsResponse:
    """STATS response."""

    frames_ok: int  # valid request frames
    frames_bad: int  # damaged frames dropped (NACKed)
    cache_hits: int  # retries answered from the retry cache (nothing ran twice)
    invokes: int  # Invoke() calls (INVOKE, RUN, PERF runs)
    nacks: int
    inits: int  # link core initialisations: 1 after power-on, +1 per RESET
    FORMAT: ClassVar[str] = "<IIIIII"
    SIZE: ClassVar[int] = 24  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.frames_ok,
            self.frames_bad,
            self.cache_hits,
            self.invokes,
            self.nacks,
            self.inits,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> StatsResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            frames_ok=next(it),
            frames_bad=next(it),
            cache_hits=next(it),
            invokes=next(it),
            nacks=next(it),
            inits=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> StatsResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class ProfileRequest:
    """PROFILE request."""

    first_op: int
    FORMAT: ClassVar[str] = "<H"
    SIZE: ClassVar[int] = 2  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.first_op,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> ProfileRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            first_op=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> ProfileRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class ProfileResponse:
    """PROFILE response."""

    op_count: int  # operators in the model
    recorded: int  # operators timed (the device keeps at most HK_PROFILE_MAX_OPS)
    first_op: int  # index of the first entry in data
    reserved: int
    cycles_total: int  # the whole Invoke() (the entries' sum plus the interpreter's own work)
    data: bytes = b""
    FORMAT: ClassVar[str] = "<HHHHI"
    SIZE: ClassVar[int] = 12  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.op_count,
            self.recorded,
            self.first_op,
            self.reserved,
            self.cycles_total,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> ProfileResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            op_count=next(it),
            recorded=next(it),
            first_op=next(it),
            reserved=next(it),
            cycles_total=next(it),
            data=bytes(tail),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values()) + bytes(self.data)

    @classmethod
    def unpack(cls, payload: bytes) -> ProfileResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short)."""
        if len(payload) < cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected at least {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class TensorRequest:
    """TENSOR request."""

    offset: int
    op_index: int
    length: int  # bytes wanted (cut to the payload and to the tensor's end)
    FORMAT: ClassVar[str] = "<IHH"
    SIZE: ClassVar[int] = 8  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.offset,
            self.op_index,
            self.length,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> TensorRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            offset=next(it),
            op_index=next(it),
            length=next(it),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> TensorRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class TensorResponse:
    """TENSOR response."""

    offset: int
    nbytes: int  # size of the whole tensor
    op_index: int
    tensor_index: int  # the tensor's index in the model's subgraph
    dtype: int  # TFLite TensorType
    data: bytes = b""
    FORMAT: ClassVar[str] = "<IIHHH"
    SIZE: ClassVar[int] = 14  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return [
            self.offset,
            self.nbytes,
            self.op_index,
            self.tensor_index,
            self.dtype,
        ]

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> TensorResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls(
            offset=next(it),
            nbytes=next(it),
            op_index=next(it),
            tensor_index=next(it),
            dtype=next(it),
            data=bytes(tail),
        )

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values()) + bytes(self.data)

    @classmethod
    def unpack(cls, payload: bytes) -> TensorResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short)."""
        if len(payload) < cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected at least {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class NackRequest:
    """NACK request."""

    FORMAT: ClassVar[str] = "<"
    SIZE: ClassVar[int] = 0  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return []

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> NackRequest:
        """Build from flattened values (and the variable-length tail)."""
        return cls()

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> NackRequest:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


@dataclass(frozen=True)
class NackResponse:
    """NACK response."""

    FORMAT: ClassVar[str] = "<"
    SIZE: ClassVar[int] = 0  # bytes of the fixed part

    def values(self) -> list[Any]:
        """The fixed part's values, flattened in struct order."""
        return []

    @classmethod
    def from_values(cls, it: Iterator[Any], tail: bytes = b"") -> NackResponse:
        """Build from flattened values (and the variable-length tail)."""
        return cls()

    def pack(self) -> bytes:
        """Encode as a payload."""
        return struct.pack(self.FORMAT, *self.values())

    @classmethod
    def unpack(cls, payload: bytes) -> NackResponse:
        """Decode a payload (raises struct.error / ValueError when it is too short or too long)."""
        if len(payload) != cls.SIZE:
            raise ValueError(f"{cls.__name__} payload has {len(payload)} bytes, expected {cls.SIZE}")
        return cls.from_values(iter(struct.unpack_from(cls.FORMAT, payload)), payload[cls.SIZE :])


REQUESTS: dict[MsgType, type[Any]] = {
    MsgType.HELLO: HelloRequest,
    MsgType.SET_INPUT: SetInputRequest,
    MsgType.INVOKE: InvokeRequest,
    MsgType.GET_OUTPUT: GetOutputRequest,
    MsgType.RUN: RunRequest,
    MsgType.PERF: PerfRequest,
    MsgType.RESET: ResetRequest,
    MsgType.LOG: LogRequest,
    MsgType.STATS: StatsRequest,
    MsgType.PROFILE: ProfileRequest,
    MsgType.TENSOR: TensorRequest,
    MsgType.NACK: NackRequest,
}
RESPONSES: dict[MsgType, type[Any]] = {
    MsgType.HELLO: HelloResponse,
    MsgType.SET_INPUT: SetInputResponse,
    MsgType.INVOKE: InvokeResponse,
    MsgType.GET_OUTPUT: GetOutputResponse,
    MsgType.RUN: RunResponse,
    MsgType.PERF: PerfResponse,
    MsgType.RESET: ResetResponse,
    MsgType.LOG: LogResponse,
    MsgType.STATS: StatsResponse,
    MsgType.PROFILE: ProfileResponse,
    MsgType.TENSOR: TensorResponse,
    MsgType.NACK: NackResponse,
}

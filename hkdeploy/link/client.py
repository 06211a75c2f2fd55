"""The host end of the device link: a robust RPC client over any pyserial URL.

Every wait is bounded (open, each packet, each command); a reader thread drains the port so the host
never deadlocks on a full buffer; a request is retried with the same sequence number after a timeout,
a NACK or a garbled answer, and the device answers a repeated sequence number from its cache, so a
retried RUN is neither lost nor executed twice. Errors name the port and the likely cause.
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from hkdeploy.errors import DeviceError
from hkdeploy.link import protocol as p
from hkdeploy.link.framing import Decoder, FrameError, Packet, encode_packet

log = logging.getLogger("hkdeploy.link")

# Statuses after which resending the same request can help (the packet was damaged on the way).
_RETRYABLE = {p.Status.BAD_CRC, p.Status.BAD_LENGTH}
# Statuses a device gives after it was reset under our feet (its negotiated payload and the chunks
# of the tensor being sent are gone): HELLO again and resend the whole tensor.
_AFTER_RESET = {p.Status.PAYLOAD_TOO_BIG, p.Status.BAD_OFFSET}


class DeviceStatusError(DeviceError):
    """The device answered a request with an error status (``status``)."""

    def __init__(self, message: str, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


class NoAnswerError(DeviceError):
    """No valid answer to a request within its retries and deadline (``problem`` says what was seen)."""

    def __init__(self, message: str, problem: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.problem = problem


class BadDeviceError(DeviceError):
    """The device said something impossible (a HELLO outside the protocol's limits, absurd sizes)."""


# Limits a sane device stays within; a HELLO outside them is refused before anything is streamed.
MAX_TENSOR_BYTES = 16 * 1024 * 1024
MAX_ARENA_BYTES = 64 * 1024 * 1024
_DTYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 7: 2, 9: 1}
LOG_LINES_KEPT = 200


def check_hello(info: p.HelloResponse, host_max_payload: int, url: str) -> None:
    """Range-check every HELLO field against the protocol's own limits.

    Raises:
        BadDeviceError: a field no hkdeploy firmware can send (names the field and its value).
    """
    problems: list[str] = []
    if info.protocol_version != p.PROTOCOL_VERSION:
        problems.append(f"protocol_version {info.protocol_version} (this host speaks {p.PROTOCOL_VERSION})")
    if not p.MIN_PAYLOAD <= info.max_payload <= max(host_max_payload, p.MIN_PAYLOAD):
        problems.append(f"max_payload {info.max_payload} (must be {p.MIN_PAYLOAD}..{host_max_payload})")
    if info.rx_credits < 1:
        problems.append(f"rx_credits {info.rx_credits} (must be >= 1)")
    known = int(p.Feature.PROFILE | p.Feature.TENSOR)
    if info.features & ~known or (info.features and not info.op_count):
        problems.append(f"features 0x{info.features:04x} with op_count {info.op_count}")
    if info.arena_size > MAX_ARENA_BYTES or info.arena_used > max(info.arena_size, MAX_ARENA_BYTES):
        problems.append(f"arena_size {info.arena_size} / arena_used {info.arena_used}")
    for name, t in (("input", info.input), ("output", info.output)):
        if info.alloc_status != 0 and t.nbytes == 0:
            continue  # a failed init may leave the tensors undescribed
        if t.dtype not in _DTYPE_BYTES:
            problems.append(f"{name} dtype {t.dtype}")
            continue
        if not 1 <= t.ndim <= len(t.dims) or any(d < 1 for d in t.dims[: t.ndim]):
            problems.append(f"{name} shape ndim={t.ndim} dims={list(t.dims)}")
            continue
        count = 1
        for d in t.dims[: t.ndim]:
            count *= d
        if not 0 < t.nbytes <= MAX_TENSOR_BYTES or t.nbytes != count * _DTYPE_BYTES[t.dtype]:
            problems.append(
                f"{name} nbytes {t.nbytes} (shape {list(t.dims[: t.ndim])} of dtype {t.dtype} "
                f"is {count * _DTYPE_BYTES[t.dtype]} B)"
            )
    if problems:
        raise BadDeviceError(
            f"{url} answered HELLO with impossible values: {'; '.join(problems)}",
            hint="this is not hkdeploy firmware of this version, or the link corrupts data: "
            "rebuild and flash (hkdeploy run), check the port is the board's",
        )


@dataclass(frozen=True)
class Timeouts:
    """Time limits in seconds."""

    connect: float = 5.0
    packet: float = 1.0
    command: float = 30.0
    retries: int = 3


@dataclass(frozen=True)
class OpCycles:
    """One operator of a profiled Invoke() (in execution order)."""

    index: int
    builtin_code: int
    cycles: int


@dataclass(frozen=True)
class Profile:
    """A PROFILE answer: per-operator counts of one Invoke() and the whole Invoke()'s."""

    op_count: int
    ops: list[OpCycles]
    cycles_total: int


@dataclass(frozen=True)
class CapturedTensor:
    """An operator's first output as the device computed it (TENSOR)."""

    op_index: int
    tensor_index: int
    dtype: int
    data: bytes


@dataclass(frozen=True)
class RunResult:
    """One inference on the device."""

    output: bytes
    cycles: int
    micros: int


def open_serial(url: str, baud: int) -> Any:
    """Open a port or pyserial URL, turning OS errors into hints."""
    import serial

    # pyserial's RFC 2217 client refuses a write timeout; its socket has one of 5 s, which bounds writes
    write_timeout = None if url.startswith("rfc2217://") else 5.0
    try:
        return serial.serial_for_url(url, baudrate=baud, timeout=0.05, write_timeout=write_timeout)
    except serial.SerialException as exc:
        text = str(exc)
        if "Permission denied" in text or "Errno 13" in text:
            hint = "add yourself to the dialout group (sudo usermod -aG dialout $USER) and log in again"
        elif "busy" in text.lower() or "Errno 16" in text:
            hint = "another program holds the port (a serial monitor? another hkdeploy?): close it"
        elif "No such file" in text or "Errno 2" in text:
            hint = "is the board plugged in? list ports with `python -m serial.tools.list_ports -v`"
        else:
            hint = "check the port name or URL (device path, socket://host:port, rfc2217://host:port)"
        raise DeviceError(f"cannot open {url}: {text}", hint=hint) from exc


class DeviceClient:
    """An open link to one device (a board or the virtual EVB).

    Args:
        url: device path or pyserial URL.
        baud: line rate (ignored by USB CDC and ptys).
        timeouts: time limits.
        transport: an already open serial-like object (tests wrap one with a fault injector).
    """

    def __init__(
        self, url: str, baud: int = 115200, timeouts: Timeouts | None = None, transport: Any = None
    ) -> None:
        self.url = url
        self.timeouts = timeouts or Timeouts()
        self.ser = transport if transport is not None else open_serial(url, baud)
        self._decoder = Decoder()
        self._queue: queue.Queue[Packet | FrameError] = queue.Queue()
        self._stop = threading.Event()
        self._seq = 0
        self.max_payload = p.DEFAULT_PAYLOAD
        self.info: p.HelloResponse | None = None
        self.logs: deque[str] = deque(maxlen=LOG_LINES_KEPT)  # the device's LOG events, newest last
        self.stats = {"retries": 0, "frame_errors": 0, "nacks": 0, "resyncs": 0, "reopens": 0, "echoes": 0}
        self._owns_port = transport is None
        self._baud = baud
        self._hello_payload = 4096
        self._expected_sha: bytes | None = None
        self._reader = threading.Thread(target=self._read_loop, name=f"hkdeploy-link-{url}", daemon=True)
        self._reader.start()

    # -- plumbing ---------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        while not self._stop.is_set():
            try:
                waiting = getattr(self.ser, "in_waiting", 0) or 1
                data = self.ser.read(waiting)
            except Exception as exc:  # port vanished (USB unplugged, board reset, virtual EVB exited)
                self._queue.put(FrameError(p.Status.BAD_LENGTH, f"port went away: {type(exc).__name__}", -1))
                self._reopen()
                continue
            if not data:
                continue
            for item in self._decoder.feed(data):
                if isinstance(item, Packet) and item.is_event:
                    text = item.payload.decode("utf-8", errors="replace")
                    self.logs.append(text)
                    log.info("device: %s", text)
                else:
                    self._queue.put(item)

    def _reopen(self) -> None:
        """After the port vanished: try to open it again (a board's USB CDC comes back after a reset)."""
        time.sleep(0.2)
        if not self._owns_port or self._stop.is_set():
            return
        try:
            self.ser.close()
        except Exception:  # it is gone already
            pass
        try:
            self.ser = open_serial(self.url, self._baud)
            self.stats["reopens"] += 1
            log.info("reopened %s", self.url)
        except DeviceError:
            pass  # still gone: the request's own deadline bounds the wait

    def _write(self, data: bytes) -> bool:
        try:
            self.ser.write(data)
            return True
        except Exception as exc:  # the port vanished mid-write: the retry loop resends
            log.info("write to %s failed: %s", self.url, exc)
            return False

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFF + 1
        return self._seq

    def close(self) -> None:
        """Stop the reader and close the port (bounded)."""
        self._stop.set()
        self._reader.join(timeout=2.0)
        try:
            self.ser.close()
        except Exception:  # closing a vanished port must not mask the real error
            pass

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def request(
        self, msg: p.MsgType, payload: bytes = b"", flags: int = 0, packet_timeout: float | None = None
    ) -> Packet:
        """Send one request and return its answer; retries with the same seq (bounded).

        Raises:
            DeviceError: no valid answer after the retries, or the device answered with an error status.
        """
        seq = self._next_seq()
        wait = packet_timeout or self.timeouts.packet
        deadline = time.monotonic() + self.timeouts.command
        tries = self.timeouts.retries + 1
        last_problem = "no answer"
        for attempt in range(tries):
            if attempt:
                self.stats["retries"] += 1
            packet = encode_packet(msg, seq, payload, flags=flags | (p.Flag.RETRY if attempt else 0))
            # a retry starts with a delimiter: it ends whatever half frame the device still holds
            # (a lost delimiter would otherwise glue the retry to the damaged try)
            if not self._write(b"\x00" + packet if attempt else packet):
                last_problem = "the port went away"
            until = min(time.monotonic() + wait, deadline)
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if isinstance(item, FrameError):
                    self.stats["frame_errors"] += 1
                    if item.detail.startswith("port went away"):
                        last_problem = "the port went away (device unplugged, reset or its process exited)"
                        time.sleep(min(0.2, max(until - time.monotonic(), 0)))
                    else:
                        last_problem = f"garbled answer ({item.detail})"
                    break  # resend at once rather than wait out the timeout
                if item.type == p.MsgType.NACK and item.seq in (seq, 0):
                    self.stats["nacks"] += 1
                    if item.status in _RETRYABLE:
                        last_problem = f"NACK {p.Status(item.status).name}"
                        break
                    self._raise_status(msg, item.status)
                if item.seq != seq or item.type != msg:
                    continue  # a stale answer to an earlier try
                if not item.flags & p.Flag.RESPONSE:
                    self.stats["echoes"] += 1
                    last_problem = (
                        "only our own request came back (the port echoes: a loopback or a terminal?)"
                    )
                    continue  # our own request echoed back by the line: never an answer
                if item.status != p.Status.OK:
                    self._raise_status(msg, item.status)
                return item
            if time.monotonic() >= deadline:
                break
        raise NoAnswerError(
            f"{msg.name} on {self.url}: {last_problem} after {tries} tries",
            last_problem,
            hint="is the firmware running and the baud rate right (link.baud)? Tx/Rx swapped? "
            "For a board, press reset; for the virtual EVB, see its log",
        )

    def _raise_status(self, msg: p.MsgType, status: int) -> None:
        text, hint = p.STATUS_TEXT.get(
            status, (f"unknown status {status}", "update hkdeploy and the firmware")
        )
        raise DeviceStatusError(
            f"{msg.name} on {self.url} failed: {text} (status {status})", status, hint or None
        )

    # -- commands ---------------------------------------------------------------------------------
    def hello(self, host_max_payload: int = 4096) -> p.HelloResponse:
        """Handshake; negotiates the payload size. A device that never answers gets a first-contact hint."""
        self._hello_payload = host_max_payload
        try:
            pkt = self.request(
                p.MsgType.HELLO,
                p.HelloRequest(host_max_payload, p.PROTOCOL_VERSION).pack(),
                packet_timeout=min(self.timeouts.connect, self.timeouts.packet * 2),
            )
        except NoAnswerError as exc:
            raise NoAnswerError(
                f"no answer to HELLO on {self.url} ({exc.problem})",
                exc.problem,
                hint="is the hkdeploy firmware flashed and running? wrong baud rate? Tx/Rx swapped? "
                "(hkdeploy flash, then press reset)",
            ) from exc
        try:
            info = p.HelloResponse.unpack(pkt.payload)
        except Exception as exc:  # struct.error / UnicodeDecodeError: not our firmware's HELLO
            raise BadDeviceError(
                f"{self.url} answered HELLO with {len(pkt.payload)} bytes that are not a HELLO of protocol "
                f"version {p.PROTOCOL_VERSION}",
                hint="flash hkdeploy firmware of this version (hkdeploy run); check the port is the board's",
            ) from exc
        check_hello(info, host_max_payload, self.url)
        self.info = info
        self.max_payload = info.max_payload
        return self.info

    def check_ready(self, expected_sha256: bytes | None) -> p.HelloResponse:
        """HELLO, then refuse a device whose allocation failed or whose model is not the exported one."""
        info = self.info or self.hello(self._hello_payload)
        self._expected_sha = expected_sha256
        if info.alloc_status != 0:
            text, hint = p.STATUS_TEXT.get(info.alloc_status, ("unknown engine status", ""))
            detail = "; ".join(list(self.logs)[-2:])
            raise DeviceError(
                f"{self.url}: the device cannot run the model: {text}"
                + (f" ({detail})" if detail else "")
                # ENGINE_INIT_FAULT: the engine never ran this boot, so it reported no arena
                + (f"; arena {info.arena_size} B" if info.arena_size else ""),
                hint=hint or None,
            )
        if expected_sha256 is not None and info.model_sha256 != expected_sha256:
            raise DeviceError(
                f"{self.url} runs another model (SHA-256 {info.model_sha256.hex()[:12]}…, export has "
                f"{expected_sha256.hex()[:12]}…): stale firmware",
                hint="rebuild and flash: hkdeploy build && hkdeploy flash (or hkdeploy run)",
            )
        return info

    def run(self, frame: bytes) -> RunResult:
        """Stream one input tensor (chunked to the negotiated payload) and get the output and timing.

        A device that was reset meanwhile (it rejects our payload size or a chunk's offset) gets a new
        HELLO (with the same model check) and the whole tensor again, a bounded number of times.
        """
        for attempt in range(self.timeouts.retries + 1):
            try:
                return self._run_once(frame)
            except DeviceStatusError as exc:
                if exc.status not in _AFTER_RESET or attempt == self.timeouts.retries:
                    raise
                self.resync()
        raise AssertionError("unreachable")

    def resync(self) -> p.HelloResponse:
        """HELLO again after a device reset (same payload request, same model check)."""
        self.stats["resyncs"] += 1
        log.info("%s was reset: HELLO again", self.url)
        self.info = None
        self.max_payload = p.DEFAULT_PAYLOAD
        self.hello(self._hello_payload)
        return self.check_ready(self._expected_sha)

    def stats_device(self) -> p.StatsResponse:
        """The device's own counters (frames, retries answered from its cache, Invoke() calls)."""
        return p.StatsResponse.unpack(self.request(p.MsgType.STATS).payload)

    def _run_once(self, frame: bytes) -> RunResult:
        info = self.info
        if info is not None and len(frame) != info.input.nbytes:
            raise DeviceError(
                f"{self.url}: the frame has {len(frame)} B but the device's input takes {info.input.nbytes} B",
                hint="the firmware was built for another model: hkdeploy build && hkdeploy flash",
            )
        step = self.max_payload - p.RunRequest.SIZE
        if step < 1:
            raise BadDeviceError(
                f"{self.url}: negotiated payload {self.max_payload} B leaves no room for data",
                hint="flash hkdeploy firmware of this version (hkdeploy run)",
            )
        deadline = time.monotonic() + self.timeouts.command
        offset = 0
        while True:
            if time.monotonic() > deadline:
                raise NoAnswerError(
                    f"RUN on {self.url} took longer than link.command_timeout ({self.timeouts.command} s)",
                    "too slow",
                    hint="raise link.command_timeout for a slow link, or check the device",
                )
            chunk = frame[offset : offset + step]
            last = offset + len(chunk) >= len(frame)
            pkt = self.request(
                p.MsgType.RUN, p.RunRequest(offset, chunk).pack(), flags=0 if last else p.Flag.MORE
            )
            if last:
                break
            offset += len(chunk)
        rsp = p.RunResponse.unpack(pkt.payload)
        expected = info.output.nbytes if info is not None else None
        if rsp.output_bytes > MAX_TENSOR_BYTES or (expected is not None and rsp.output_bytes != expected):
            raise BadDeviceError(
                f"{self.url}: RUN answered an output of {rsp.output_bytes} B; HELLO said {expected} B",
                hint="the device is not hkdeploy firmware of this version, or it is confused: reset it",
            )
        out = bytearray(rsp.data)
        while len(out) < rsp.output_bytes:
            if time.monotonic() > deadline:
                raise NoAnswerError(
                    f"GET_OUTPUT on {self.url} took longer than link.command_timeout ({self.timeouts.command} s)",
                    "too slow",
                    hint="raise link.command_timeout for a slow link, or check the device",
                )
            room = self.max_payload - p.GetOutputResponse.SIZE
            more = p.GetOutputResponse.unpack(
                self.request(p.MsgType.GET_OUTPUT, p.GetOutputRequest(len(out), room).pack()).payload
            )
            if not more.data:
                raise DeviceError(
                    f"{self.url}: GET_OUTPUT returned no data at offset {len(out)}",
                    hint="reset the device; if it repeats, rebuild and flash (hkdeploy run)",
                )
            out += more.data
        if len(out) != rsp.output_bytes:
            raise BadDeviceError(
                f"{self.url}: the output came back with {len(out)} B, not {rsp.output_bytes} B",
                hint="reset the device; if it repeats, rebuild and flash (hkdeploy run)",
            )
        return RunResult(bytes(out), rsp.cycles, rsp.micros)

    def perf(self, warmup: int = 5, runs: int = 20) -> p.PerfResponse:
        """Latency of Invoke() on the device's current input (bounded counts)."""
        if not (0 <= warmup <= 100 and 1 <= runs <= 64):
            raise DeviceError(
                f"PERF warmup {warmup} / runs {runs} out of range (0..100 / 1..64)",
                hint="ask for at most 100 warm-ups and 64 measured runs",
            )
        timeout = max(self.timeouts.packet, 2.0 + (warmup + runs) * 0.5)
        return p.PerfResponse.unpack(
            self.request(p.MsgType.PERF, p.PerfRequest(warmup, runs).pack(), packet_timeout=timeout).payload
        )

    def features(self) -> p.Feature:
        """HELLO's feature bits (p.Feature); 0 before HELLO."""
        return p.Feature(self.info.features) if self.info is not None else p.Feature.NONE

    def set_input(self, frame: bytes) -> None:
        """Write the input tensor (SET_INPUT chunks) without running it: for INVOKE, PERF, PROFILE, TENSOR."""
        info = self.info
        if info is not None and len(frame) != info.input.nbytes:
            raise DeviceError(
                f"{self.url}: the frame has {len(frame)} B but the device's input takes {info.input.nbytes} B",
                hint="the firmware was built for another model: hkdeploy build && hkdeploy flash",
            )
        step = self.max_payload - p.SetInputRequest.SIZE
        for offset in range(0, len(frame), step):
            chunk = frame[offset : offset + step]
            last = offset + len(chunk) >= len(frame)
            self.request(
                p.MsgType.SET_INPUT, p.SetInputRequest(offset, chunk).pack(), flags=0 if last else p.Flag.MORE
            )

    def profile(self) -> Profile:
        """Per-operator counts of one Invoke() on the current input (PROFILE, paged).

        Raises:
            DeviceStatusError: the engine cannot profile (status ENGINE_UNSUPPORTED).
            BadDeviceError: the pages do not add up.
        """
        timeout = max(self.timeouts.packet, 5.0)
        first = p.ProfileResponse.unpack(
            self.request(p.MsgType.PROFILE, p.ProfileRequest(0).pack(), packet_timeout=timeout).payload
        )
        rsp, entries = first, bytearray()
        deadline = time.monotonic() + self.timeouts.command
        while True:
            if time.monotonic() > deadline:
                raise NoAnswerError(
                    f"PROFILE on {self.url} took longer than link.command_timeout ({self.timeouts.command} s)",
                    "too slow",
                    hint="raise link.command_timeout for a slow link, or check the device",
                )
            if rsp.first_op != len(entries) // p.WireOp.SIZE or len(rsp.data) % p.WireOp.SIZE:
                raise BadDeviceError(
                    f"{self.url}: PROFILE page at operator {rsp.first_op} with {len(rsp.data)} B does not "
                    "follow the previous one",
                    hint="reset the device; if it repeats, rebuild and flash (hkdeploy run)",
                )
            entries += rsp.data
            got = len(entries) // p.WireOp.SIZE
            if got >= first.recorded or not rsp.data:
                break
            rsp = p.ProfileResponse.unpack(
                self.request(p.MsgType.PROFILE, p.ProfileRequest(got).pack()).payload
            )
        if got != first.recorded or first.recorded > first.op_count:
            raise BadDeviceError(
                f"{self.url}: PROFILE gave {got} entries; it said {first.recorded} of {first.op_count} operators",
                hint="reset the device; if it repeats, rebuild and flash (hkdeploy run)",
            )
        ops = [
            OpCycles(i, code, cycles)
            for i, (code, _, cycles) in enumerate(struct.iter_unpack(p.WireOp.FORMAT, bytes(entries)))
        ]
        return Profile(first.op_count, ops, first.cycles_total)

    def tensor(self, op_index: int) -> CapturedTensor:
        """Operator ``op_index``'s first output on the current input (TENSOR chunks; one Invoke() each)."""
        deadline = time.monotonic() + self.timeouts.command
        timeout = max(self.timeouts.packet, 5.0)
        room = self.max_payload - p.TensorResponse.SIZE
        data = bytearray()
        nbytes: int | None = None
        while nbytes is None or len(data) < nbytes:
            if time.monotonic() > deadline:
                raise NoAnswerError(
                    f"TENSOR on {self.url} took longer than link.command_timeout ({self.timeouts.command} s)",
                    "too slow",
                    hint="raise link.command_timeout for a slow link, or check the device",
                )
            rsp = p.TensorResponse.unpack(
                self.request(
                    p.MsgType.TENSOR,
                    p.TensorRequest(len(data), op_index, room).pack(),
                    packet_timeout=timeout,
                ).payload
            )
            if rsp.op_index != op_index or rsp.offset != len(data) or rsp.nbytes > MAX_TENSOR_BYTES:
                raise BadDeviceError(
                    f"{self.url}: TENSOR answered operator {rsp.op_index} at offset {rsp.offset} "
                    f"({rsp.nbytes} B); asked operator {op_index} at {len(data)}",
                    hint="reset the device; if it repeats, rebuild and flash (hkdeploy run)",
                )
            if nbytes is not None and rsp.nbytes != nbytes:
                raise BadDeviceError(
                    f"{self.url}: TENSOR of operator {op_index} changed size ({nbytes} -> {rsp.nbytes} B)",
                    hint="reset the device; if it repeats, rebuild and flash (hkdeploy run)",
                )
            nbytes = rsp.nbytes
            if not rsp.data and len(data) < nbytes:
                raise BadDeviceError(
                    f"{self.url}: TENSOR of operator {op_index} returned no data at offset {len(data)}",
                    hint="reset the device; if it repeats, rebuild and flash (hkdeploy run)",
                )
            data += rsp.data
            tensor_index, dtype = rsp.tensor_index, rsp.dtype
        return CapturedTensor(op_index, tensor_index, dtype, bytes(data[:nbytes]))

    def reset(self) -> None:
        """Soft reset; the next command must be HELLO."""
        self.request(p.MsgType.RESET)
        self.info = None
        self.max_payload = p.DEFAULT_PAYLOAD

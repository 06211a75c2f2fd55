"""Pipelined RUNs: up to W requests in flight on one link, exactly once, answers in order.

One request per round trip leaves the line idle while a request's answer travels back and the next
request travels out; on a network hop (USB, TCP, RFC 2217) the round trip, not the line, sets the
rate. Here the host keeps up to W single-packet RUNs unanswered at once, W being the credits the
device granted in HELLO (``rx_credits``). The device still handles them one at a time in arrival
order.

Exactly once: a request is resent with its own sequence number (flag RETRY), and the host only
sends a request whose place in the send order is within W of its oldest unanswered one. Then at
most 2W - 2 other requests can run on the device between a request's run and its resend (up to W - 1
older ones whose first try was lost, up to W - 1 newer ones), and the device caches its last 2W - 1
answers (HK_RETRY_CACHE): a resent request that had run is answered from the cache. A
request is resent when: no answer came for ``packet`` seconds; a NACK names it (or a NACK with seq
0 / a garbled frame arrived and nothing later explains it: the timeout covers that); or the answer
to a request sent after it arrived first (the device answers in order, so an answer that should
have come before is lost, in either direction).

Pipelining applies when a frame fits one RUN packet and its output fits the RUN answer (otherwise
the output of frame k would have to be fetched with GET_OUTPUT before frame k + 1 runs, which is a
round trip anyway): :func:`run_many` then falls back to :meth:`DeviceClient.run` per frame.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from hkdeploy.errors import DeviceError
from hkdeploy.link import protocol as p
from hkdeploy.link.client import (
    _AFTER_RESET,
    _RETRYABLE,
    BadDeviceError,
    DeviceClient,
    NoAnswerError,
    RunResult,
)
from hkdeploy.link.framing import FrameError, encode_packet


@dataclass
class _InFlight:
    index: int  # position in the caller's frames
    order: int  # position in the send order of this pipeline (monotonic, never wraps)
    seq: int
    frame: bytes
    sent_at: float = 0.0
    sent_order: int = 0  # send order of its latest try (a resend moves it to the back)
    tries: int = 0
    deadline: float = 0.0
    problems: list[str] = field(default_factory=list)


def window_for(dev: DeviceClient, frame_bytes: int, window: int | None = None) -> int:
    """The window usable for frames of ``frame_bytes`` on ``dev`` (1 = no pipelining)."""
    info = dev.info
    if info is None:
        return 1
    credits = max(1, int(info.rx_credits))
    w = credits if window is None else max(1, min(window, credits))
    fits_in = frame_bytes <= dev.max_payload - p.RunRequest.SIZE
    fits_out = info.output.nbytes <= dev.max_payload - p.RunResponse.SIZE
    return w if fits_in and fits_out else 1


def run_many(dev: DeviceClient, frames: Iterable[bytes], window: int | None = None) -> Iterator[RunResult]:
    """RUN every frame; yields the results in the frames' order.

    Args:
        dev: a client after HELLO (``check_ready``).
        frames: input tensors (each the model's input size).
        window: most RUNs in flight (default and ceiling: the device's credits).

    Raises:
        DeviceError: a frame got no valid answer after the retries or within the command timeout, or
            the device answered with an error status (DeviceStatusError).
    """
    it = iter(frames)
    first = next(it, None)
    if first is None:
        return
    w = window_for(dev, len(first), window)
    if w == 1:
        yield dev.run(first)
        for frame in it:
            yield dev.run(frame)
        return
    yield from _Pipeline(dev, w).run(first, it)


class _Pipeline:
    def __init__(self, dev: DeviceClient, window: int) -> None:
        self.dev = dev
        self.window = window
        self.t = dev.timeouts
        self.order = 0  # next request's send order
        self.send_counter = 0  # counts every try (for "answered out of order")
        self.flight: dict[int, _InFlight] = {}  # by seq
        self.done: dict[int, RunResult] = {}  # by index, waiting for earlier ones

    def run(self, first: bytes, rest: Iterator[bytes]) -> Iterator[RunResult]:
        pending: list[bytes] = [first]
        index = 0  # next frame to send
        emit = 0  # next frame to yield
        exhausted = False
        while True:
            # fill the window: by send order, within W of the oldest unanswered request (so at most
            # W - 1 answers wait in self.done for an earlier one)
            while not exhausted:
                oldest = min((r.order for r in self.flight.values()), default=self.order)
                if self.order - oldest >= self.window:
                    break
                if not pending:
                    nxt = next(rest, None)
                    if nxt is None:
                        exhausted = True
                        break
                    pending.append(nxt)
                self._send_new(index, pending.pop(0))
                index += 1
            if not self.flight:
                break
            self._receive_one()
            while emit in self.done:
                yield self.done.pop(emit)
                emit += 1
        while emit in self.done:
            yield self.done.pop(emit)
            emit += 1

    # -- sending ------------------------------------------------------------------------------
    def _send_new(self, index: int, frame: bytes) -> None:
        seq = self.dev._next_seq()
        req = _InFlight(index, self.order, seq, frame)
        req.deadline = time.monotonic() + self.t.command
        self.order += 1
        self.flight[seq] = req
        self._send(req)

    def _send(self, req: _InFlight) -> None:
        if req.tries > self.t.retries:
            gone = [p for p in req.problems if "went away" in p]
            problem = gone[-1] if gone else (req.problems[-1] if req.problems else "no answer")
            raise NoAnswerError(
                f"RUN on {self.dev.url}: {problem} after {req.tries} tries (pipelined, window {self.window})",
                problem,
                hint="is the firmware running and the baud rate right (link.baud)? For a board, press reset",
            )
        if time.monotonic() > req.deadline:
            raise NoAnswerError(
                f"RUN on {self.dev.url}: no answer within link.command_timeout ({self.t.command} s)",
                "too slow",
                hint="is the firmware running? For a board, press reset; for the virtual EVB, see its log",
            )
        retry = req.tries > 0
        if retry:
            self.dev.stats["retries"] += 1
        packet = encode_packet(
            p.MsgType.RUN, req.seq, p.RunRequest(0, req.frame).pack(), flags=p.Flag.RETRY if retry else 0
        )
        # a resend starts with a delimiter: it ends whatever half frame the device still holds
        if not self.dev._write(b"\x00" + packet if retry else packet):
            req.problems.append("the port went away")
        req.tries += 1
        req.sent_at = time.monotonic()
        req.sent_order = self.send_counter
        self.send_counter += 1

    def _resend(self, req: _InFlight, problem: str) -> None:
        req.problems.append(problem)
        self._send(req)

    # -- receiving ----------------------------------------------------------------------------
    def _receive_one(self) -> None:
        oldest = min(self.flight.values(), key=lambda r: r.sent_order)
        left = oldest.sent_at + self._wait() - time.monotonic()
        try:
            item = self.dev._queue.get(timeout=max(0.0, left))
        except queue.Empty:
            # nothing for a packet timeout: every unanswered request is resent (in send order)
            for waiting in sorted(self.flight.values(), key=lambda r: r.sent_order):
                self._resend(waiting, "no answer")
            return
        if isinstance(item, FrameError):
            self.dev.stats["frame_errors"] += 1
            if item.detail.startswith("port went away"):
                problem = "the port went away (device unplugged, reset or its process exited)"
                for waiting in self.flight.values():
                    waiting.problems.append(problem)
                time.sleep(min(0.2, self.t.packet))
            else:
                oldest.problems.append(f"garbled answer ({item.detail})")
            return  # a later answer or the timeout tells which request it was
        if not item.is_response:
            return  # our own request echoed (a looped-back line): never an answer
        if item.type == p.MsgType.NACK:
            self.dev.stats["nacks"] += 1
            req = self.flight.get(item.seq)
            if item.status in _RETRYABLE:
                if req is not None:
                    self._resend(req, f"NACK {p.Status(item.status).name}")
                else:
                    oldest.problems.append(f"NACK {p.Status(item.status).name}")
                return
            if req is not None or item.seq == 0:
                self._status(item.status)
            return
        req = self.flight.get(item.seq)
        if req is None or item.type != p.MsgType.RUN:
            return  # a stale or duplicated answer to an earlier try
        if not item.flags & p.Flag.RESPONSE:
            self.dev.stats["echoes"] += 1
            req.problems.append("only our own request came back (the port echoes: a loopback or a terminal?)")
            return  # our own request echoed by the line: never an answer
        if item.status != p.Status.OK:
            self._status(item.status)  # raises, or resent everything after a device reset
            return
        del self.flight[item.seq]
        rsp = p.RunResponse.unpack(item.payload)
        expected = self.dev.info.output.nbytes if self.dev.info is not None else rsp.output_bytes
        if rsp.output_bytes != expected:
            raise BadDeviceError(
                f"{self.dev.url}: RUN answered an output of {rsp.output_bytes} B; HELLO said {expected} B",
                hint="the device is not hkdeploy firmware of this version, or it is confused: reset it",
            )
        if len(rsp.data) < rsp.output_bytes:
            raise DeviceError(
                f"{self.dev.url}: RUN answer holds {len(rsp.data)} of {rsp.output_bytes} B",
                hint="set link.window=1 for a device whose output needs more than one packet",
            )
        self.done[req.index] = RunResult(bytes(rsp.data[: rsp.output_bytes]), rsp.cycles, rsp.micros)
        # the device answers in arrival order: what was sent before this one's try and is still
        # unanswered was lost (the request or its answer): resend it now rather than time out
        for other in sorted(self.flight.values(), key=lambda r: r.sent_order):
            if other.sent_order < req.sent_order:
                self._resend(other, "answered out of order (lost)")

    def _wait(self) -> float:
        # the oldest try may queue behind up to W - 1 others on the device
        return self.t.packet * self.window

    def _status(self, status: int) -> None:
        if status in _AFTER_RESET:
            # the device was reset under us: HELLO again (same model check), then resend everything
            self.dev.resync()
            for req in sorted(self.flight.values(), key=lambda r: r.sent_order):
                self._resend(req, "device reset")
            return
        self.dev._raise_status(p.MsgType.RUN, status)

"""TEST DOUBLE: a fault-injecting wrapper around a serial-like object (for link tests only).

It damages the byte stream in both directions, seeded, so a test can show the protocol recovers:
corrupt, drop and duplicate bytes; delay reads and writes; truncate packets (the rest of a packet up
to its delimiter is lost); and reset the device mid-stream (a callback, e.g. the virtual EVB's reset
button, after every N packets the host sends). No user-facing command uses it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

DELIMITER = 0


class FaultyTransport:
    """Wraps ``inner`` (pyserial-like: read, write, in_waiting, close) and damages the byte stream.

    Args:
        corrupt: probability that a byte is XOR-ed with a random non-zero value.
        drop: probability that a byte is lost.
        duplicate: probability that a byte is sent twice.
        delay: probability that a read or write first waits up to ``max_delay`` seconds.
        truncate: probability that a packet loses everything after a random cut, up to its delimiter.
        reset_every: after every this many packets written, call ``on_reset`` (before sending on).
        on_reset: what a reset is (e.g. ``HostPort.press_reset``).
        seed: random seed (reproducible damage).
    """

    def __init__(
        self,
        inner: Any,
        corrupt: float = 0.0,
        drop: float = 0.0,
        duplicate: float = 0.0,
        seed: int = 0,
        *,
        delay: float = 0.0,
        max_delay: float = 0.02,
        truncate: float = 0.0,
        reset_every: int | None = None,
        on_reset: Callable[[], None] | None = None,
    ) -> None:
        if reset_every is not None and on_reset is None:
            raise ValueError("reset_every needs on_reset")
        self.inner = inner
        self.corrupt, self.drop, self.duplicate = corrupt, drop, duplicate
        self.delay, self.max_delay, self.truncate = delay, max_delay, truncate
        self.reset_every, self.on_reset = reset_every, on_reset
        self.rng = random.Random(seed)
        self.damaged = 0
        self.delays = 0
        self.truncated = 0
        self.resets = 0
        self.packets_written = 0
        # per direction: bytes of the current packet still to keep before the cut (None: not cut)
        self._keep: dict[str, int | None] = {"r": None, "w": None}
        self._cutting: dict[str, bool] = {"r": False, "w": False}

    def _maybe_delay(self) -> None:
        if self.delay and self.rng.random() < self.delay:
            self.delays += 1
            time.sleep(self.rng.uniform(0.0, self.max_delay))

    def _truncate(self, data: bytes, direction: str) -> bytes:
        if not self.truncate:
            return data
        out = bytearray()
        for b in data:
            if b == DELIMITER:
                self._cutting[direction] = False
                self._keep[direction] = None
                out.append(b)
                continue
            if self._keep[direction] is None and not self._cutting[direction]:
                # first byte of a packet: decide whether this one gets cut, and where
                self._keep[direction] = self.rng.randrange(0, 64) if self.rng.random() < self.truncate else -1
                if self._keep[direction] != -1:
                    self.truncated += 1
            keep = self._keep[direction]
            if self._cutting[direction]:
                self.damaged += 1
                continue
            if keep is not None and keep >= 0:
                if keep == 0:
                    self._cutting[direction] = True
                    self.damaged += 1
                    continue
                self._keep[direction] = keep - 1
            out.append(b)
        return bytes(out)

    def _damage(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            r = self.rng.random()
            if r < self.drop:
                self.damaged += 1
                continue
            if r < self.drop + self.corrupt:
                self.damaged += 1
                b ^= self.rng.randrange(1, 256)
            out.append(b)
            if self.rng.random() < self.duplicate:
                self.damaged += 1
                out.append(b)
        return bytes(out)

    @property
    def in_waiting(self) -> int:
        return int(self.inner.in_waiting)

    def read(self, size: int = 1) -> bytes:
        self._maybe_delay()
        return self._damage(self._truncate(self.inner.read(size), "r"))

    def write(self, data: bytes) -> int:
        packets = data.count(DELIMITER)
        if self.reset_every and self.on_reset is not None:
            before = self.packets_written // self.reset_every
            if (self.packets_written + packets) // self.reset_every > before:
                self.resets += 1
                self.on_reset()
        self.packets_written += packets
        self._maybe_delay()
        self.inner.write(self._damage(self._truncate(data, "w")))
        return len(data)

    def close(self) -> None:
        self.inner.close()

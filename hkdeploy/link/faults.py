"""TEST DOUBLE: a fault-injecting wrapper around a serial-like object (for link tests only).

It corrupts, drops and duplicates bytes in both directions with given probabilities, seeded, so a
test can show the protocol recovers. No user-facing command uses it.
"""

from __future__ import annotations

import random
from typing import Any


class FaultyTransport:
    """Wraps ``inner`` (pyserial-like: read, write, in_waiting, close) and damages the byte stream.

    Args:
        corrupt: probability that a byte is XOR-ed with a random non-zero value.
        drop: probability that a byte is lost.
        duplicate: probability that a byte is sent twice.
        seed: random seed (reproducible damage).
    """

    def __init__(
        self, inner: Any, corrupt: float = 0.0, drop: float = 0.0, duplicate: float = 0.0, seed: int = 0
    ):
        self.inner = inner
        self.corrupt, self.drop, self.duplicate = corrupt, drop, duplicate
        self.rng = random.Random(seed)
        self.damaged = 0

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
        return self._damage(self.inner.read(size))

    def write(self, data: bytes) -> int:
        self.inner.write(self._damage(data))
        return len(data)

    def close(self) -> None:
        self.inner.close()

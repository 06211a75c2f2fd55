"""Run a model with TFLM's reference kernels on the host (the tflite-micro Python runtime).

This is the golden reference for the board: the same kernels the firmware runs. No TensorFlow.
The runtime segfaults on far-too-small arenas and reports errors only on fd 2, so
``probe_arena`` runs each attempt in a child process; ``TflmRunner`` is used in-process only with an
arena that a probe has proven.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import os
import re
import select
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hkdeploy.children import die_with_parent_fn
from hkdeploy.errors import ToolError, UserError

PROBE_TIMEOUT_S = 60
# Headroom added to the host's smallest working arena for the 32-bit board: the host runtime lays
# out 64-bit pointers (its figure ran ~6 % above a Cortex-M4 build), but CMSIS-NN kernels add
# scratch buffers the reference kernels do not have (+12.5 % measured on Cortex-M55).
ARENA_MARGIN_FRACTION = 0.25
ARENA_MARGIN_MIN = 2048


def board_arena_size(host_min: int) -> int:
    """Arena for the firmware: host minimum + max(25 %, 2 KiB), rounded up to 16 bytes."""
    size = host_min + max(ARENA_MARGIN_MIN, int(host_min * ARENA_MARGIN_FRACTION))
    return (size + 15) // 16 * 16


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one arena attempt."""

    ok: bool
    recorded: int | None  # "Arena allocation total N bytes" when allocation succeeded
    message: str  # the runtime's fd-2 text (why it failed)
    crashed: bool


def probe_once(model_path: Path, arena: int, timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Allocate and invoke once in a child process with ``arena`` bytes.

    On Linux the child is forked from this process (the runtime is imported once, here: no new
    interpreter per probe, ~0.2 s of CPU each); elsewhere it is a fresh ``python -m hkdeploy.tflm``.
    Either way it dies with its parent.

    Raises:
        ToolError: the probe did not finish within ``timeout`` seconds.
    """
    if sys.platform.startswith("linux"):
        returncode, text = _probe_forked(model_path, arena, timeout)
    else:  # pragma: no cover - exercised on macOS/Windows only
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "hkdeploy.tflm", str(model_path), str(arena)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise _probe_timeout(timeout) from exc
        returncode, text = proc.returncode, (proc.stderr or "") + (proc.stdout or "")
    return _probe_result(returncode, text)


def _probe_timeout(timeout: float) -> ToolError:
    return ToolError(
        f"a TFLM arena probe did not finish within {timeout:.0f} s",
        hint="a very large model on a slow machine? run again; report it if it persists",
    )


def _probe_forked(model_path: Path, arena: int, timeout: float) -> tuple[int, str]:
    """Fork, run ``_probe_main`` in the child with fds 1 and 2 on a pipe; (exit status, its output)."""
    from tflite_micro.python.tflite_micro import runtime  # noqa: F401  (imported before the fork)

    die_with_parent = die_with_parent_fn()
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_fd)
            faulthandler.disable()  # a crash here is an answer (arena too small), not a report
            if die_with_parent is not None:
                die_with_parent()
            os.dup2(write_fd, 1)
            os.dup2(write_fd, 2)
            code = _probe_main([str(model_path), str(arena)])
        except BaseException:
            try:
                import traceback

                traceback.print_exc(file=sys.__stderr__)
                sys.__stderr__.flush()  # type: ignore[union-attr]
            except BaseException:
                pass
        finally:
            with contextlib.suppress(BaseException):
                ctypes.CDLL(None).fflush(None)  # C stdio buffers: os._exit does not flush them
            os._exit(code)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise _probe_timeout(timeout)
            ready, _, _ = select.select([read_fd], [], [], min(remaining, 1.0))
            if ready:
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
    except BaseException:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    finally:
        os.close(read_fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def _probe_result(returncode: int, text: str) -> ProbeResult:
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    lines = [
        ln
        for ln in text.splitlines()
        if ln.strip() and "RecordingMicroAllocator" not in ln and not ln.startswith(("Traceback", "  "))
    ]
    return ProbeResult(
        ok=returncode == 0,
        recorded=int(m.group(1)) if m else None,
        message=" ".join(lines)[-500:],
        crashed=returncode < 0,
    )


@dataclass(frozen=True)
class ArenaResult:
    """The smallest working host arena and the size recommended for the board."""

    host_min: int
    recorded: int
    board: int
    probes: int
    target32: dict[str, Any] | None = None  # the 32-bit measurement the board arena came from, if any

    @property
    def host(self) -> int:
        """Arena for the host runtime (64-bit pointers): never below the host minimum it proved."""
        return max(self.board, self.host_min)


def probe_arena(model_path: Path, start: int | None = None) -> ArenaResult:
    """Find the smallest arena (16-byte steps) with which TFLM allocates and invokes the model.

    Raises:
        UserError: the model does not allocate even with a large arena (missing op, bad type, ...).
    """
    size = model_path.stat().st_size
    big = start or max(1 << 20, 8 * size)
    first = probe_once(model_path, big)
    if not first.ok or first.recorded is None:
        raise UserError(
            f"TFLM cannot run this model (allocation with a {big}-byte arena failed): "
            f"{first.message or 'no message from the runtime'}",
            hint="check the op list in the export report; TFLM lacks some ops and types (e.g. float16)",
        )
    probes = 1
    hi = first.recorded
    # The recorded total usually works as it is, and the smallest working arena sits just below it
    # (6 bytes below, measured): both probes are independent, so they run together (2 rounds of
    # probes in the common case instead of 3).
    with ThreadPoolExecutor(max_workers=2) as pool:
        at, below = pool.map(lambda n: probe_once(model_path, n).ok, (hi, hi - 16))
    probes += 1
    if not at:  # rare: grow until it works, then try the bracket below it
        while True:
            hi = int(hi * 1.25) + 16
            probes += 1
            if probe_once(model_path, hi).ok:
                break
        below = probe_once(model_path, hi - 16).ok
    probes += 1
    if not below:
        lo = hi - 16
    else:
        hi, lo = hi - 16, 0  # known to fail: an empty arena holds nothing
    while hi - lo > 16:
        mid = (lo + hi) // 2
        probes += 1
        if probe_once(model_path, mid).ok:
            hi = mid
        else:
            lo = mid
    return ArenaResult(host_min=hi, recorded=first.recorded, board=board_arena_size(hi), probes=probes)


class TflmRunner:
    """In-process TFLM interpreter for a model and an arena that a probe has proven."""

    def __init__(self, model: bytes, arena_size: int) -> None:
        from tflite_micro.python.tflite_micro import runtime

        try:
            self._it = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
        except RuntimeError as exc:
            raise UserError(
                f"TFLM failed to allocate tensors with a {arena_size}-byte arena: {exc}",
                hint="the model needs an op TFLM lacks or a larger arena: see the export report's op list",
            ) from exc
        self.input_details: dict[str, Any] = self._it.get_input_details(0)
        self.output_details: dict[str, Any] = self._it.get_output_details(0)

    def run(self, frame: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """One inference; ``frame`` already in the input tensor's dtype and shape (batch 1)."""
        shape = tuple(int(d) for d in self.input_details["shape"])
        self._it.set_input(np.ascontiguousarray(frame.reshape(shape), dtype=self.input_details["dtype"]), 0)
        self._it.invoke()
        return np.array(self._it.get_output(0), copy=True)

    def run_many(self, frames: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Run each frame; returns outputs stacked on a new first axis."""
        return np.stack([self.run(f).reshape(-1) for f in frames])


def _probe_main(argv: list[str]) -> int:  # pragma: no cover - runs in the child
    from tflite_micro.python.tflite_micro import runtime

    model = Path(argv[0]).read_bytes()
    it = runtime.Interpreter.from_bytes(model, arena_size=int(argv[1]))
    d = it.get_input_details(0)
    it.set_input(np.zeros([int(v) for v in d["shape"]], dtype=d["dtype"]), 0)
    it.invoke()
    it.print_allocations()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_probe_main(sys.argv[1:]))

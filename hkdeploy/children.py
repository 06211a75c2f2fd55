"""Child processes that die with their parent, and SIGTERM handled like Ctrl-C.

A SIGKILLed parent cannot clean up: without help its children are reparented to init and keep
running (a TensorFlow worker writing into a staging folder nobody will remove). On Linux
``die_with_parent`` (a ``preexec_fn``) asks the kernel to SIGKILL the child when the parent goes.
No TensorFlow here.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_PR_SET_PDEATHSIG = 1


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no libc to ask
        return None


def die_with_parent_fn() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when the parent dies (Linux), else None.

    The death signal fires when the *thread* that forked the child ends, so start long-lived
    children from the main thread (short probe children from worker threads are fine: the thread
    outlives them).
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = _libc()
    if libc is None:  # pragma: no cover
        return None
    parent = os.getpid()
    # resolved here, before the fork: the child of a threaded parent must not look symbols up
    # (dlsym may take a lock another thread held at fork time)
    prctl = libc.prctl

    def preexec() -> None:  # runs in the child between fork and exec: async-signal-safe calls only
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != parent:
            os._exit(1)  # no death signal, or the parent died before it took effect

    return preexec


_GROUPS: set[int] = set()


def own_group(pgid: int) -> None:
    """Record a child's process group (started with ``start_new_session``) as ours to kill: whatever
    is still recorded when the interpreter exits gets SIGKILL (a clean stop calls ``release_group``)."""
    _GROUPS.add(pgid)


def release_group(pgid: int) -> None:
    """The group was stopped: nothing to kill at exit."""
    _GROUPS.discard(pgid)


def _kill_groups() -> None:
    for pgid in list(_GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _GROUPS.discard(pgid)


atexit.register(_kill_groups)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (so cleanup runs and the CLI exits 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):  # somebody (a caller, a test runner) handles it already
        yield
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM during a short critical section (e.g. renaming artifacts into place).

    Python runs signal handlers in the main thread whichever thread the kernel delivered the signal
    to (numpy's BLAS threads, a link reader), so masking the main thread alone does not hold them:
    the handlers are swapped for ones that only record the signal, and the first one recorded is
    acted on when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = (signal.SIGINT, signal.SIGTERM)
    caught: list[int] = []

    def record(signum: int, frame: Any) -> None:
        caught.append(signum)

    previous: dict[int, Any] = {int(sig): signal.signal(sig, record) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                if caught[0] == signal.SIGINT:
                    raise KeyboardInterrupt
                signal.raise_signal(caught[0])

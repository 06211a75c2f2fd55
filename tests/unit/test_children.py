"""hkdeploy.children: children die with a SIGKILLed parent; SIGTERM becomes KeyboardInterrupt; signals held."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hkdeploy.children import signals_deferred, sigterm_as_interrupt

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")

PARENT = r"""
import subprocess, sys, time
from hkdeploy.children import die_with_parent_fn
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn={fn})
print(child.pid, flush=True)
time.sleep(60)
"""


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _orphan_outlives(fn: str) -> bool:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.replace("{fn}", fn)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        parent.kill()
        parent.wait(timeout=10)
        outlived = not _gone(child, 3.0)
    finally:
        if parent.poll() is None:
            parent.kill()
    if outlived:
        os.kill(child, signal.SIGKILL)
    return outlived


@linux_only
def test_a_child_started_with_die_with_parent_goes_with_a_sigkilled_parent() -> None:
    assert not _orphan_outlives("die_with_parent_fn()")


@linux_only
def test_without_it_the_child_outlives_its_parent() -> None:  # the test above can fail
    assert _orphan_outlives("None")


def test_sigterm_raises_keyboard_interrupt_inside_the_block_only() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) == before


def test_signals_deferred_holds_sigterm_until_the_block_ends() -> None:
    reached_end = False
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            reached_end = True
        time.sleep(1)
    assert reached_end

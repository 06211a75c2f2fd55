"""The virtual EVB as a managed process.

The host port is the firmware's own link core built for Linux with gcc (by ``hkdeploy.platforms.host``,
the one builder); its UART is a pty and its engine runs TFLM's reference kernels through the
tflite-micro runtime (embedded CPython). It enforces the memory limits of the board it emulates.
``HostPort`` starts it in its own process group and always stops it (context manager, atexit), and
the process dies with its parent (PR_SET_PDEATHSIG), so no stray process outlives a run or a crash.
"""

from __future__ import annotations

import os
import select
import signal
import site
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from hkdeploy.children import own_group, release_group
from hkdeploy.errors import DeviceError

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


class HostPort:
    """A running host port. Use as a context manager; ``url`` is its pty for pyserial.

    Args:
        binary: the built host port.
        board: name reported in HELLO (e.g. ``sim:apollo4p_evb``).
        mram_bytes / sram_bytes: the emulated board's limits (None = unlimited).
        baud: pace both directions as an 8N1 UART at this rate (0 = unpaced).
        log_path: where its stderr goes (TFLM runtime messages).
    """

    def __init__(
        self,
        binary: Path,
        board: str = "sim",
        mram_bytes: int | None = None,
        sram_bytes: int | None = None,
        baud: int = 0,
        log_path: Path | None = None,
    ) -> None:
        self.binary = binary
        self.args = ["--board", board, "--baud", str(baud)]
        if mram_bytes:
            self.args += ["--mram-bytes", str(mram_bytes)]
        if sram_bytes:
            self.args += ["--sram-bytes", str(sram_bytes)]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> HostPort:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*site.getsitepackages(), *sys.path[1:]])}
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(self.binary), *self.args],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            start_new_session=True,  # own process group: stop() kills everything it started
        )
        own_group(self.proc.pid)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready or self.proc.poll() is not None:
                code = self.proc.poll()
                self.stop()
                what = (
                    f"exited with status {code} before it was ready"
                    if code is not None
                    else f"did not start within {START_TIMEOUT_S:.0f} s"
                )
                raise DeviceError(
                    f"the virtual EVB {what}",
                    hint=f"see its log{f' {self.log_path}' if self.log_path else ''}; rebuild with hkdeploy build",
                )
            line += os.read(self.proc.stdout.fileno(), 1)
        self.url = line.decode().split(" ", 1)[1].strip()
        return self

    def exit_status(self) -> int | None:
        """The process's exit status if it has exited (None while it runs)."""
        return self.proc.poll() if self.proc else None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def press_reset(self) -> None:
        """The board's reset button: engine and link restart as after power-on (SIGUSR1)."""
        if self.proc is None:
            raise DeviceError(
                "the virtual EVB is not running", hint="start it first (HostPort.start or a with block)"
            )
        os.kill(self.proc.pid, signal.SIGUSR1)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after a bounded wait."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        release_group(pgid)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> HostPort:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

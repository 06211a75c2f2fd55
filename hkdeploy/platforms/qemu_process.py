"""An emulated Cortex-M board: ``qemu-system-arm`` running a firmware ELF, owned like the virtual EVB.

``QemuBoard`` starts QEMU with the board's UART0 on a pseudo-terminal (``url`` is its path, for
pyserial and :class:`hkdeploy.link.client.DeviceClient`) and its monitor on a unix socket (the reset
button: ``system_reset``). It runs with ``-icount shift=0``: the emulated CPU executes one
instruction per nanosecond of virtual time, so the firmware's SysTick counts are the same on every
run (instructions on an emulated Cortex-M, never the latency of an Apollo MCU).

The process is always ours to end: its own process group, ``PR_SET_PDEATHSIG`` (it dies with the
thread that started it), an ``atexit`` kill, bounded start and stop. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from hkdeploy.children import die_with_parent_fn, own_group, release_group
from hkdeploy.errors import DeviceError, ToolError
from hkdeploy.platforms.qemu_build import MACHINES, get_machine

QEMU = "qemu-system-arm"
QEMU_HINT = "apt-get install qemu-system-arm"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
MONITOR_TIMEOUT_S = 5.0
_PTY_RE = re.compile(rb"char device redirected to (/dev/pts/\d+) \(label serial0\)")


def qemu_command(machine: str, elf: Path, monitor: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """The ``qemu-system-arm`` command line for ``elf`` on ``machine``."""
    get_machine(machine)
    return [
        QEMU,
        "-M",
        machine,
        "-nographic",
        "-kernel",
        str(elf),
        "-icount",
        "shift=0",  # deterministic: 1 instruction = 1 ns of virtual time
        "-serial",
        "pty",
        "-monitor",
        f"unix:{monitor},server=on,wait=off",
        *extra,
    ]


class QemuBoard:
    """A running emulated board. Use as a context manager; ``url`` is its UART0 pty.

    Args:
        elf: the firmware (``hkdeploy.platforms.qemu_build.build_qemu_firmware``).
        machine: ``mps2-an386`` (Cortex-M4F) or ``mps3-an547`` (Cortex-M55).
        log_path: where QEMU's own messages go (appended).
        extra_args: more ``qemu-system-arm`` arguments (e.g. ``-d guest_errors``).
    """

    def __init__(
        self,
        elf: Path,
        machine: str = "mps2-an386",
        log_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        if machine not in MACHINES:
            get_machine(machine)  # raises the UserError with the valid names
        self.elf = Path(elf)
        self.machine = machine
        self.log_path = log_path
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._monitor: Path | None = None
        self._drain: threading.Thread | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def monitor_path(self) -> Path | None:
        return self._monitor

    def start(self) -> QemuBoard:
        """Start QEMU and learn its pty within ``START_TIMEOUT_S``.

        Raises:
            ToolError: qemu-system-arm is not installed.
            DeviceError: the ELF is missing, or QEMU exited or said nothing in time.
        """
        if shutil.which(QEMU) is None:
            raise ToolError(f"{QEMU} is not installed (needed for the emulated boards)", hint=QEMU_HINT)
        if not self.elf.is_file():
            raise DeviceError(
                f"firmware {self.elf} does not exist", hint="build it first (hkdeploy build --board qemu_m4)"
            )
        self._tmp = tempfile.TemporaryDirectory(prefix="hkdeploy-qemu-")
        self._monitor = Path(self._tmp.name) / "monitor.sock"
        self.proc = subprocess.Popen(
            qemu_command(self.machine, self.elf, self._monitor, self.extra_args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() kills everything it started
            # SIGKILL when the starting thread dies: start boards from one that outlives them (main)
            preexec_fn=die_with_parent_fn(),
        )
        own_group(self.proc.pid)
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + START_TIMEOUT_S
        seen = b""
        while True:
            match = _PTY_RE.search(seen)
            if match:
                self.url = match.group(1).decode()
                break
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0.0))
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                code = self.proc.poll()
                self.stop()
                said = seen.decode(errors="replace").strip().splitlines()
                raise DeviceError(
                    f"{QEMU} -M {self.machine} "
                    + (
                        f"exited with status {code}"
                        if code is not None
                        else f"gave no pty within {START_TIMEOUT_S:.0f} s"
                    )
                    + (f": {said[-1]}" if said else ""),
                    hint="check the ELF was built for this machine; run the command by hand (docs/firmware.md)",
                )
            seen += chunk
        self._log = open(self.log_path, "ab") if self.log_path else None
        if self._log:
            self._log.write(seen)
        self._drain = threading.Thread(target=self._drain_output, name=f"qemu-{self.proc.pid}", daemon=True)
        self._drain.start()
        return self

    def _drain_output(self) -> None:
        """Keep reading QEMU's output so it never blocks on a full pipe (into the log, if any)."""
        proc = self.proc
        if proc is None or proc.stdout is None:
            return
        fd = proc.stdout.fileno()
        try:
            while chunk := os.read(fd, 4096):
                if self._log:
                    self._log.write(chunk)
                    self._log.flush()
        except (OSError, ValueError):  # the pipe was closed by stop()
            pass

    def monitor(self, command: str) -> str:
        """Send one command to the QEMU monitor and return its reply (bounded).

        Raises:
            DeviceError: QEMU is not running or its monitor does not answer.
        """
        if self.proc is None or self._monitor is None or self.proc.poll() is not None:
            raise DeviceError("the emulated board is not running", hint="start it first (QemuBoard.start)")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(MONITOR_TIMEOUT_S)
                sock.connect(str(self._monitor))
                _read_until_prompt(sock)
                sock.sendall(command.encode() + b"\n")
                return _read_until_prompt(sock)
        except OSError as exc:
            raise DeviceError(
                f"the QEMU monitor of {self.url or self.machine} did not answer {command!r}: {exc}",
                hint="is qemu-system-arm still running? see its log",
            ) from exc

    def press_reset(self) -> None:
        """The reset button: the whole machine resets, the firmware boots again (the host must HELLO)."""
        self.monitor("system_reset")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after a bounded wait; removes the monitor socket."""
        if self.proc is not None:
            pgid = self.proc.pid
            try:
                os.killpg(pgid, signal.SIGTERM)
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except ProcessLookupError:  # it had exited (and been reaped) already
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            release_group(pgid)
            if self._drain is not None:
                self._drain.join(timeout=STOP_TIMEOUT_S)
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._monitor = None

    def __enter__(self) -> QemuBoard:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _read_until_prompt(sock: socket.socket) -> str:
    data = b""
    while not data.rstrip().endswith(b"(qemu)"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")

"""Our own host side of the MLPerf Tiny runner protocol (what ``benchmark/runner`` sends).

Commands go out as ``command%``; replies are ``\\r\\n`` lines ending with ``m-ready``. Every wait is
bounded: 5 s per line as the runner waits, 30 s per line during ``infer``. No TensorFlow.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from hkdeploy.errors import DeviceError
from hkdeploy.link.client import open_serial
from hkdeploy.mlperf import CMD_MAX, HEX_CHUNK

LINE_TIMEOUT_S = 5.0
INFER_LINE_TIMEOUT_S = 30.0
FIRST_CONTACT_HINT = (
    "no reply: check the baud rate (115200; 921600 for ad01; 9600 in energy mode), that the board runs "
    "the DUT image (`hkdeploy build --app mlperf`, then flash), Tx/Rx wiring and port permissions"
)


@dataclass
class InferResult:
    """One ``infer N W``: the two timestamps and the printed outputs."""

    iterations: int
    warmups: int
    start_us: int | None
    end_us: int | None
    results: list[str]
    lines: list[str] = field(default_factory=list)

    @property
    def elapsed_us(self) -> int | None:
        if self.start_us is None or self.end_us is None:
            return None
        return self.end_us - self.start_us


class DutError(DeviceError):
    """The DUT answered with an ``e-[...]`` line."""


class DutClient:
    """An open connection to a DUT. Use as a context manager.

    Args:
        url: device path (a pty works) or pyserial URL.
        baud: line rate.
        line_timeout: seconds to wait for each reply line.
    """

    def __init__(self, url: str, baud: int = 115200, line_timeout: float = LINE_TIMEOUT_S) -> None:
        self.url = url
        self.baud = baud
        self.line_timeout = line_timeout
        self._port: Any = None
        self._buf = b""
        self.transcript: list[tuple[str, str]] = []  # ("tx"|"rx", text) for the report

    # -- port ----------------------------------------------------------------------------------

    def open(self) -> DutClient:
        self._port = open_serial(self.url, self.baud)
        self._buf = b""
        return self

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> DutClient:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def write(self, data: bytes) -> None:
        assert self._port is not None, "open() first"
        self._port.write(data)
        self.transcript.append(("tx", data.decode(errors="replace")))

    def read_line(self, timeout: float) -> str | None:
        """One line without its CR/LF, or None when none completed within ``timeout``."""
        assert self._port is not None, "open() first"
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            if time.monotonic() > deadline:
                return None
            self._buf += self._port.read(self._port.in_waiting or 1)
        line, self._buf = self._buf.split(b"\n", 1)
        text = line.replace(b"\r", b"").replace(b"\0", b"").decode(errors="replace")
        self.transcript.append(("rx", text))
        return text

    def command(self, cmd: str, line_timeout: float | None = None) -> list[str]:
        """Send ``cmd%`` and return the reply lines up to (without) ``m-ready``.

        Raises:
            DeviceError: a line did not come in time. DutError: the DUT answered ``e-[...]``.
        """
        if len(cmd) > CMD_MAX:
            raise DeviceError(
                f"command longer than {CMD_MAX} characters: {cmd[:20]}...",
                hint="the runner protocol allows 80 characters: send data in db chunks of 31 bytes",
            )
        self.write(cmd.encode() + b"%")
        lines: list[str] = []
        while True:
            line = self.read_line(line_timeout or self.line_timeout)
            if line is None:
                raise DeviceError(
                    f"no response to command {cmd.split(' ')[0]} on {self.url}", hint=FIRST_CONTACT_HINT
                )
            if line == "m-ready":
                break
            if line:
                lines.append(line)
        errors = [ln for ln in lines if ln.startswith("e-[")]
        if errors:
            raise DutError(f"the DUT refused `{cmd[:40]}`: {errors[0]}")
        return lines

    def sync(self, timeout: float = 30.0) -> None:
        """Discard what the DUT printed so far (boot banner, a half-read reply): send ``name%`` and
        read up to the ``m-ready`` after its ``m-name-dut-[...]`` line. The DUT answers commands in
        order and only after its boot, so that ``m-ready`` is the last thing it has to say."""
        self.write(b"name%")
        deadline = time.monotonic() + timeout
        named = False
        while time.monotonic() < deadline:
            line = self.read_line(max(deadline - time.monotonic(), 0.01))
            if line is None:
                break
            if line.startswith("m-name-dut-["):
                named = True
            elif line == "m-ready" and named:
                return
        raise DeviceError(
            f"the DUT on {self.url} did not answer within {timeout:.0f} s", hint=FIRST_CONTACT_HINT
        )

    # -- protocol ------------------------------------------------------------------------------

    def name(self) -> str:
        for line in self.command("name"):
            m = re.match(r"^m-name-dut-\[([^]]+)\]$", line)
            if m:
                return m.group(1)
        raise DeviceError(f"the device on {self.url} gave no m-name-dut-[...] line", hint=FIRST_CONTACT_HINT)

    def profile(self) -> tuple[str, str]:
        """(profile, model id)."""
        found: dict[str, str] = {}
        for line in self.command("profile"):
            m = re.match(r"^m-(model|profile)-\[([^]]+)\]$", line)
            if m:
                found[m.group(1)] = m.group(2)
        if "model" not in found or "profile" not in found:
            raise DeviceError(
                f"the device on {self.url} gave no m-profile/m-model lines",
                hint="is it hkdeploy's DUT image (hkdeploy build --app mlperf, then flash)?",
            )
        return found["profile"], found["model"]

    def load(self, data: bytes, chunk: int = HEX_CHUNK) -> None:
        """``db load N`` and the bytes as hex, ``chunk`` bytes per command (the runner sends 31)."""
        lines = self.command(f"db load {len(data)}")
        if f"m-[Expecting {len(data)} bytes]" not in lines:
            raise DeviceError(
                f"unexpected reply to db load: {lines}",
                hint="the DUT was built for another model: hkdeploy build --app mlperf, then flash",
            )
        done = False
        for i in range(0, len(data), chunk):
            done = "m-load-done" in self.command("db " + data[i : i + chunk].hex())
        if not done:
            raise DeviceError(
                "the DUT did not report m-load-done after the last chunk",
                hint="reset the DUT and run mlperf check again",
            )

    def infer(self, iterations: int, warmups: int) -> InferResult:
        lines = self.command(f"infer {iterations} {warmups}", line_timeout=INFER_LINE_TIMEOUT_S)
        laps = [int(m.group(1)) for ln in lines if (m := re.match(r"^m-lap-us-(\d+)$", ln))]
        results = _results(lines)
        return InferResult(
            iterations,
            warmups,
            laps[0] if len(laps) >= 1 else None,
            laps[1] if len(laps) >= 2 else None,
            results,
            lines,
        )

    def results(self) -> list[str]:
        return _results(self.command("results"))


def _results(lines: list[str]) -> list[str]:
    for line in lines:
        m = re.match(r"^m-results-\[([^]]*)\]$", line)
        if m:
            return [v for v in m.group(1).split(",") if v]
    raise DeviceError(
        "the DUT printed no m-results-[...] line", hint="reset the DUT and run mlperf check again"
    )

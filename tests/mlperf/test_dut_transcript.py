"""The virtual EVB's MLPerf Tiny DUT, byte for byte.

Every expected reply below is written by hand from the runner's protocol (mlcommons/tiny
benchmark/api and benchmark/runner): ``command%`` in, ``\\r\\n`` lines out, ``m-ready`` last. Only the
microsecond timestamps are matched as ``{us}`` (digits). The golden results are the export's TFLM
outputs dequantized here with plain float arithmetic and printed with 6 decimals.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial

from hkdeploy.mlperf.firmware import build_host_dut
from hkdeploy.platforms.host_process import HostPort

READY = b"m-ready\r\n"


@pytest.fixture(scope="session")
def dut_binary(exported_demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mlperf") / "hk_dut_host"
    return build_host_dut(exported_demo.export_dir, out, name="hkdeploy-test", model_id="kws01")


@pytest.fixture(scope="session")
def demo(exported_demo: Any) -> tuple[np.ndarray, list[str]]:
    """(inputs, golden m-results text per input)."""
    with np.load(exported_demo.export_dir / "test_data.npz") as d:
        raw, tflm = d["input_raw"], d["tflm"]
    out = json.loads((exported_demo.export_dir / "export_report.json").read_text())["model"]["output"]
    scale, zp = out["scale"], out["zero_point"]
    assert (scale, zp) == (0.00390625, -128)  # the demo's softmax output: values are exact multiples
    golden = [",".join(f"{(int(q) - zp) * scale:.6f}" for q in row) for row in tflm]
    return raw, golden


@pytest.fixture
def dut(dut_binary: Path, tmp_path: Path) -> Iterator[HostPort]:
    with HostPort(dut_binary, log_path=tmp_path / "dut.log") as hp:
        yield hp


def _open(url: str) -> serial.Serial:
    return serial.Serial(url, 115200, timeout=0.05)


def _read_reply(port: serial.Serial, timeout: float = 10.0, quiet: float = 0.2) -> bytes:
    """Bytes up to and including an m-ready after which nothing more arrives for ``quiet`` s."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        buf += port.read(max(1, port.in_waiting))  # returns as soon as something arrived
        if buf.endswith(READY):
            quiet_until = time.monotonic() + quiet
            while time.monotonic() < quiet_until:
                more = port.read(4096)
                if more:
                    buf += more
                    break
            else:
                return buf
    raise AssertionError(f"no complete reply within {timeout} s: {buf!r}")


def _sync(port: serial.Serial, name: bytes = b"hkdeploy-test", timeout: float = 60.0) -> None:
    """Discard the boot banner (if we were in time for it): up to the m-ready after our name%'s reply
    (the DUT answers in order, so nothing of the banner can follow it)."""
    port.write(b"name%")
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"m-name-dut-[" + name + b"]\r\n" + READY):
        assert time.monotonic() < deadline, f"no answer to name%: {buf!r}"
        buf += port.read(4096)


def _matches(expected: bytes, got: bytes) -> bool:
    pattern = re.escape(expected).replace(re.escape(b"{us}"), rb"(\d+)")
    return re.fullmatch(pattern, got, re.DOTALL) is not None


def _exchange(port: serial.Serial, tx: bytes, expected: bytes, quiet: float = 0.2) -> bytes:
    port.write(tx)
    got = _read_reply(port, quiet=quiet)
    assert _matches(expected, got), f"sent {tx!r}\nexpected {expected!r}\ngot      {got!r}"
    return got


def _load(port: serial.Serial, data: bytes) -> None:
    _exchange(port, f"db load {len(data)}%".encode(), f"m-[Expecting {len(data)} bytes]\r\n".encode() + READY)
    chunks = [data[i : i + 31] for i in range(0, len(data), 31)]
    for k, chunk in enumerate(chunks):
        last = k == len(chunks) - 1
        # no quiet wait per chunk: anything extra would show in the next reply's exact match
        _exchange(
            port,
            b"db " + chunk.hex().encode() + b"%",
            (b"m-load-done\r\n" if last else b"") + READY,
            quiet=0.0,
        )


HELP = (
    b"ULPMark for tinyML Firmware V0.0.1\r\n"
    b"\r\n"
    b"help         : Print this information\r\n"
    b"name         : Print the name of the device\r\n"
    b"profile      : Print the profile and the model id\r\n"
    b"timestamp    : Generate a timestamp\r\n"
    b"db SUBCMD    : Manipulate the input buffer\r\n"
    b"  load N     : Expect N bytes (N = the model's input size)\r\n"
    b"  db HH[HH]* : Load 8-bit hex byte(s) until N bytes\r\n"
    b"infer N [W=10]: Run W warm-up and N timed inferences on the loaded input\r\n"
    b"results      : Print the dequantized outputs of the last inference\r\n"
)


def test_boot_and_every_command_byte_exact(dut: HostPort, demo: Any) -> None:
    raw, golden = demo
    data = raw[0].tobytes()
    assert len(data) == 1250
    port = _open(dut.url)
    try:
        _sync(port)
        dut.press_reset()  # power-on: the banner
        got = _read_reply(port, 30.0)
        assert _matches(b"m-timestamp-mode-performance\r\nm-lap-us-{us}\r\nm-init-done\r\n" + READY, got), got
        ex = _exchange
        ex(port, b"name%", b"m-name-dut-[hkdeploy-test]\r\n" + READY)
        ex(
            port,
            b"profile%",
            b"m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\nm-model-[kws01]\r\n" + READY,
        )
        ex(port, b"help%", HELP + READY)
        t = ex(port, b"timestamp%", b"m-lap-us-{us}\r\n" + READY)
        t1 = ex(port, b"timestamp%", b"m-lap-us-{us}\r\n" + READY)
        assert int(t1[9:].split(b"\r")[0]) >= int(t[9:].split(b"\r")[0])
        ex(port, b"bogus%", b"e-[Unknown command: bogus]\r\n" + READY)
        ex(port, b"%", READY)  # a bare terminator (the runner's flush)
        ex(port, b"name\r\n%", b"m-name-dut-[hkdeploy-test]\r\n" + READY)  # CR/LF are not part of it
        ex(port, b"name extra%", b"e-[Command 'name' takes no arguments]\r\n" + READY)
        # the 80-character limit: 80 characters are a command, 81 are refused whole
        ex(port, b"name" + b" " * 76 + b"%", b"m-name-dut-[hkdeploy-test]\r\n" + READY)
        ex(port, b"name" + b" " * 77 + b"%", b"e-[Command longer than 80 characters: ignored]\r\n" + READY)
        ex(
            port,
            b"db load 1250 " + b"0" * 100 + b"%",
            b"e-[Command longer than 80 characters: ignored]\r\n" + READY,
        )
        # nothing loaded yet
        ex(port, b"results%", b"e-[No results: run infer first]\r\n" + READY)
        ex(port, b"infer 1 0%", b"e-[No input: send db load N and the data first]\r\n" + READY)
        ex(port, b"db 00%", b"e-[No load in progress: send db load N first]\r\n" + READY)
        ex(port, b"db%", b"e-[Command 'db' requires a subcommand]\r\n" + READY)
        ex(port, b"db load%", b"e-[Command 'db load' requires the # of bytes]\r\n" + READY)
        ex(port, b"db load -5%", b"e-[Command 'db load' requires the # of bytes]\r\n" + READY)
        ex(port, b"db load 99999999999%", b"e-[Command 'db load' requires the # of bytes]\r\n" + READY)
        # db load larger (or smaller) than the model input: refused, nothing is expected afterwards
        ex(port, b"db load 5000%", b"e-[db load 5000: the model input is 1250 bytes]\r\n" + READY)
        ex(port, b"db 0102%", b"e-[No load in progress: send db load N first]\r\n" + READY)
        ex(port, b"db load 1249%", b"e-[db load 1249: the model input is 1250 bytes]\r\n" + READY)
        # a load, with malformed chunks on the way
        ex(port, b"db load 1250%", b"m-[Expecting 1250 bytes]\r\n" + READY)
        ex(port, b"db abc%", b"e-[Insufficient number of hex digits]\r\n" + READY)
        ex(port, b"db 0g%", b"e-[Invalid hex digit 'g']\r\n" + READY)
        ex(port, b"db 00 11%", b"e-[Command 'db' takes one hex string]\r\n" + READY)
        body, tail = data[:1249], data[1249:]
        for i in range(0, len(body), 31):
            ex(port, b"db " + body[i : i + 31].hex().encode() + b"%", READY)
        ex(
            port,
            b"db " + (tail + b"\x00").hex().encode() + b"%",
            b"e-[2 bytes sent, 1 expected: chunk ignored]\r\n" + READY,
        )
        ex(port, b"db " + tail.hex().upper().encode() + b"%", b"m-load-done\r\n" + READY)
        ex(port, b"db 00%", b"e-[No load in progress: send db load N first]\r\n" + READY)
        # infer argument errors
        ex(port, b"infer 0%", b"e-[Inference iterations must be >0]\r\n" + READY)
        ex(port, b"infer x%", b"e-[Inference iterations must be >0]\r\n" + READY)
        ex(port, b"infer 1 x%", b"e-[Inference warmup must be >=0]\r\n" + READY)
        ex(port, b"infer 1 2 3%", b"e-[Command 'infer' takes N [W]]\r\n" + READY)
        # accuracy-mode inference: results equal the golden, character for character
        res = f"m-results-[{golden[0]}]\r\n".encode()
        got = ex(
            port,
            b"infer 1 0%",
            b"m-warmup-start-0\r\nm-warmup-done\r\nm-infer-start-1\r\nm-lap-us-{us}\r\nm-lap-us-{us}\r\n"
            b"m-infer-done\r\n" + res + READY,
        )
        laps = [int(v) for v in re.findall(rb"m-lap-us-(\d+)", got)]
        assert laps[1] >= laps[0]
        ex(port, b"results%", res + READY)
        # performance-mode inference and the reference's defaults (1 timed, 10 warm-ups)
        ex(port, b"infer 20 3%", b"m-warmup-start-3\r\nm-warmup-done\r\nm-infer-start-20\r\nm-lap-us-{us}\r\n"
           b"m-lap-us-{us}\r\nm-infer-done\r\n" + res + READY)  # fmt: skip
        ex(port, b"infer%", b"m-warmup-start-10\r\nm-warmup-done\r\nm-infer-start-1\r\nm-lap-us-{us}\r\n"
           b"m-lap-us-{us}\r\nm-infer-done\r\n" + res + READY)  # fmt: skip
    finally:
        port.close()


def test_results_equal_the_golden_for_many_inputs(dut: HostPort, demo: Any) -> None:
    raw, golden = demo
    port = _open(dut.url)
    try:
        _sync(port)
        for i in range(0, len(raw), 10):
            _load(port, raw[i].tobytes())
            port.write(b"infer 1 0%")
            got = _read_reply(port)
            assert f"m-results-[{golden[i]}]\r\n".encode() in got, (i, got)
    finally:
        port.close()


def test_port_closed_and_reopened_mid_session(dut: HostPort, demo: Any) -> None:
    """The runner identifies the DUT, closes the port and reopens it for the script: state survives,
    a command cut by the close is forgotten."""
    raw, golden = demo
    data = raw[3].tobytes()
    port = _open(dut.url)
    _sync(port)
    _exchange(port, b"name%", b"m-name-dut-[hkdeploy-test]\r\n" + READY)
    _exchange(port, b"db load 1250%", b"m-[Expecting 1250 bytes]\r\n" + READY)
    for i in range(0, 620, 31):
        _exchange(port, b"db " + data[i : i + 31].hex().encode() + b"%", READY)
    port.write(b"db 0011")  # cut by the close: never completed
    time.sleep(0.1)
    port.close()
    time.sleep(0.3)
    port = _open(dut.url)
    try:
        _exchange(
            port,
            b"profile%",
            b"m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\nm-model-[kws01]\r\n" + READY,
        )
        for i in range(620, 1250, 31):
            last = i + 31 >= 1250
            _exchange(
                port,
                b"db " + data[i : i + 31].hex().encode() + b"%",
                (b"m-load-done\r\n" if last else b"") + READY,
            )
        _exchange(port, b"results%", b"e-[No results: run infer first]\r\n" + READY)
        port.write(b"infer 1 0%")
        assert f"m-results-[{golden[3]}]\r\n".encode() in _read_reply(port)
        port.close()
        time.sleep(0.3)
        port = _open(dut.url)  # a third connection sees the same results
        _exchange(port, b"results%", f"m-results-[{golden[3]}]\r\n".encode() + READY)
    finally:
        port.close()
    assert dut.proc is not None and dut.proc.poll() is None  # still running


def test_energy_mode_timestamps_are_gpio_edges(exported_demo: Any, tmp_path: Path, demo: Any) -> None:
    binary = build_host_dut(exported_demo.export_dir, tmp_path / "dut_energy", name="hkdeploy-e", energy=True)
    log = tmp_path / "dut.log"
    with HostPort(binary, log_path=log) as hp:
        port = _open(hp.url)
        try:
            _sync(port, b"hkdeploy-e")
            hp.press_reset()
            got = _read_reply(port, 30.0)
            assert got == b"m-timestamp-mode-energy\r\nm-init-done\r\n" + READY, got
            _exchange(port, b"timestamp%", READY)
            _exchange(
                port,
                b"profile%",
                b"m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\nm-model-[custom]\r\n" + READY,
            )
        finally:
            port.close()
    edges = re.findall(r"timestamp pin (low|high) at (\d+) us", log.read_text())
    # boot twice (power-on and reset) and the timestamp command: low then high each time, >= 1 us apart
    assert [e[0] for e in edges] == ["low", "high"] * 3
    for (_, t_low), (_, t_high) in zip(edges[::2], edges[1::2], strict=True):
        assert int(t_high) - int(t_low) >= 1

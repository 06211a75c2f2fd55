"""The MLPerf DUT front end cross-compiled and run on the emulated Cortex-M4F (mps2-an386) and
Cortex-M55 (mps3-an547), with the fake engine (a test double: 300 input bytes, outputs [invokes,
sum of the input mod 256, first byte, last byte] as int8 with scale 1/256 and zero point -128).
Expected replies are written by hand from the protocol and the fake engine's rule."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
import serial

from hkdeploy.mlperf.firmware import DUT_SOURCES
from hkdeploy.platforms.qemu_build import build_qemu_firmware
from hkdeploy.platforms.qemu_process import QemuBoard

REPO = Path(__file__).resolve().parents[2]
FAKE_ENGINE = REPO / "tests" / "c" / "fake_engine.c"
READY = b"m-ready\r\n"

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="needs qemu-system-arm and arm-none-eabi-gcc: "
    "apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi",
)


def _reply(port: serial.Serial, timeout: float = 20.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        buf += port.read(4096)
        if buf.endswith(READY):
            more = port.read(4096)  # 50 ms of quiet: nothing follows
            if not more:
                return buf
            buf += more
    raise AssertionError(f"no complete reply within {timeout} s: {buf!r}")


def _sync(port: serial.Serial, timeout: float = 60.0) -> None:
    """Discard the boot banner (if we were in time for it): up to the m-ready after our name%'s reply
    (the DUT answers in order, so nothing of the banner can follow it)."""
    port.write(b"name%")
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"m-name-dut-[hkdeploy-qemu]\r\n" + READY):
        assert time.monotonic() < deadline, f"no answer to name%: {buf!r}"
        buf += port.read(4096)


def _ex(port: serial.Serial, tx: bytes, expected: bytes) -> bytes:
    port.write(tx)
    got = _reply(port)
    pattern = re.escape(expected).replace(re.escape(b"{us}"), rb"(\d+)")
    assert re.fullmatch(pattern, got, re.DOTALL), f"sent {tx!r}\nexpected {expected!r}\ngot      {got!r}"
    return got


@pytest.mark.parametrize("machine", ["mps2-an386", "mps3-an547"])
def test_dut_on_the_emulated_cortex_m(machine: str, tmp_path: Path) -> None:
    build = build_qemu_firmware(
        machine,
        [FAKE_ENGINE],
        tmp_path / f"dut_{machine}.elf",
        defines={
            "HK_APP_MLPERF": 1,
            "HK_DUT_NAME": '"hkdeploy-qemu"',
            "HK_DUT_MODEL_ID": '"ad01"',
            "HK_DUT_INPUT_MAX": "300u",
        },
        core_sources=DUT_SOURCES,
        log=tmp_path / "commands.log",
    )
    with QemuBoard(build.elf, machine, log_path=tmp_path / "qemu.log") as board:
        port = serial.Serial(board.url, 115200, timeout=0.05)
        try:
            _sync(port)
            board.press_reset()
            got = _reply(port)
            assert re.fullmatch(
                rb"m-timestamp-mode-performance\r\nm-lap-us-\d+\r\nm-init-done\r\nm-ready\r\n", got
            ), got
            _ex(port, b"name%", b"m-name-dut-[hkdeploy-qemu]\r\n" + READY)
            _ex(
                port,
                b"profile%",
                b"m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\nm-model-[ad01]\r\n" + READY,
            )
            _ex(port, b"db load 301%", b"e-[db load 301: the model input is 300 bytes]\r\n" + READY)
            _ex(port, b"x" * 81 + b"%", b"e-[Command longer than 80 characters: ignored]\r\n" + READY)
            _ex(port, b"db load 300%", b"m-[Expecting 300 bytes]\r\n" + READY)
            data = bytes(i % 256 for i in range(300))
            for i in range(0, 300, 31):
                last = i + 31 >= 300
                _ex(
                    port,
                    b"db " + data[i : i + 31].hex().encode() + b"%",
                    (b"m-load-done\r\n" if last else b"") + READY,
                )
            # invokes 1; sum 33586 mod 256 = 50; first 0; last 43 -> (q + 128) / 256, 6 decimals, half to even
            got = _ex(port, b"infer 1 0%", b"m-warmup-start-0\r\nm-warmup-done\r\nm-infer-start-1\r\nm-lap-us-{us}\r\n"
                      b"m-lap-us-{us}\r\nm-infer-done\r\nm-results-[0.503906,0.695312,0.500000,0.667969]\r\n" + READY)  # fmt: skip
            t0, t1 = (int(v) for v in re.findall(rb"m-lap-us-(\d+)", got))
            assert t1 >= t0
            # 1 warm-up and 2 timed: invokes 2, 3, 4 -- every one sees the loaded input
            _ex(port, b"infer 2 1%", b"m-warmup-start-1\r\nm-warmup-done\r\nm-infer-start-2\r\nm-lap-us-{us}\r\n"
                b"m-lap-us-{us}\r\nm-infer-done\r\nm-results-[0.515625,0.695312,0.500000,0.667969]\r\n" + READY)  # fmt: skip
            _ex(port, b"results%", b"m-results-[0.515625,0.695312,0.500000,0.667969]\r\n" + READY)
        finally:
            port.close()

"""The firmware's link core on real 32-bit Arm code: QEMU mps2-an386 (Cortex-M4F) and mps3-an547
(Cortex-M55), driven through the emulated UART by the production DeviceClient.

The engine is tests/c/fake_engine.c (a TEST DOUBLE): its output carries the number of Invoke() calls
since init, so a retried RUN that ran twice is caught.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hkdeploy.errors import DeviceError
from hkdeploy.link.client import DeviceClient, Timeouts, open_serial
from hkdeploy.platforms.qemu_build import MACHINES
from hkdeploy.platforms.qemu_process import QemuBoard
from tests.doubles.faults import FaultyTransport
from tests.platform.qemu_support import needs_qemu, qemu_processes_running

pytestmark = needs_qemu

IN_BYTES = 300
EMU_TICKS = 3  # HELLO counter_kind: SysTick ticks of an emulated Cortex-M (hk_platform.h)


def frame(k: int) -> bytes:
    return bytes((k * 7 + i * 13) % 256 for i in range(IN_BYTES))


def expected(data: bytes, invokes: int) -> bytes:
    """What the fake engine answers: [invokes mod 256, sum mod 256, first byte, last byte]."""
    return bytes([invokes % 256, sum(data) % 256, data[0], data[-1]])


def fault_frame(kind: int) -> bytes:
    return b"FAULT!" + bytes([kind]) + bytes(IN_BYTES - 7)


@pytest.fixture
def board(qemu_boards: dict[str, QemuBoard], machine: str) -> QemuBoard:
    b = qemu_boards[machine]
    b.press_reset()  # every test starts from power-on state
    return b


@pytest.fixture
def device(board: QemuBoard) -> Iterator[DeviceClient]:
    with DeviceClient(board.url, timeouts=Timeouts(packet=1.0, command=20.0)) as dev:
        yield dev


def test_hello_describes_the_emulated_board(device: DeviceClient, machine: str) -> None:
    info = device.hello()
    assert info.board == f"qemu:{machine}" and info.build_id == "test-fake-engine"
    assert info.alloc_status == 0 and info.input.nbytes == IN_BYTES and info.output.nbytes == 4
    # QEMU flow-controls its UART backend (no byte is lost while the core is busy): the core's default
    # credits hold; only the bare-UART neuralSPOT build grants 1
    assert info.max_payload == 1600 and info.rx_credits == 4
    # the counter is labelled for what it is: SysTick ticks under -icount, never Apollo cycles
    assert info.counter_kind == EMU_TICKS and info.cpu_hz == MACHINES[machine].systick_hz


def _thousand_runs(board: QemuBoard) -> tuple[float, int]:
    """1000 RUNs, each output checked; returns (seconds, retries)."""
    with DeviceClient(board.url, timeouts=Timeouts(packet=2.0, command=30.0)) as dev:
        dev.hello()
        before = dev.stats_device()
        n = 1000
        start = time.monotonic()
        for k in range(1, n + 1):
            data = frame(k)
            assert dev.run(data).output == expected(data, k), f"{board.machine} RUN {k}"
        seconds = time.monotonic() - start
        after = dev.stats_device()
    assert after.invokes - before.invokes == n  # none lost, none run twice
    assert after.frames_bad == before.frames_bad  # a clean line: nothing damaged
    # a clean link retries only when the host waited too long (a loaded machine); every such retry was
    # answered from the device's cache, never run again
    assert after.cache_hits - before.cache_hits == dev.stats["retries"]
    return seconds, dev.stats["retries"]


def test_1000_runs_exact_through_the_emulated_uart_on_both_machines(
    qemu_boards: dict[str, QemuBoard],
) -> None:
    """Both emulated boards at once (one thread each: QEMU's UART is slow, the host has 2 cores)."""
    for b in qemu_boards.values():
        b.press_reset()
    with ThreadPoolExecutor(max_workers=len(qemu_boards)) as pool:
        futures = {m: pool.submit(_thousand_runs, b) for m, b in qemu_boards.items()}
        results = {m: f.result(timeout=600) for m, f in futures.items()}
    for m, (seconds, retries) in results.items():
        print(f"\n{m}: 1000 RUNs in {seconds:.1f} s = {1000 / seconds:.0f} RUN/s ({retries} retries)")


def test_perf_counts_are_deterministic(board: QemuBoard, machine: str) -> None:
    """PERF's tick counts: equal within a request, after a system reset and in a new QEMU process."""

    def measure(url: str) -> tuple[int, int, int, int]:
        with DeviceClient(url, timeouts=Timeouts(packet=1.0, command=20.0)) as dev:
            dev.hello()
            runs = [dev.run(frame(5)).cycles for _ in range(5)]
            perf = dev.perf(warmup=2, runs=40)
            assert perf.cpu_hz == MACHINES[machine].systick_hz
            assert len(set(runs)) == 1 and runs[0] == perf.cycles_median
            return perf.cycles_min, perf.cycles_median, perf.cycles_max, runs[0]

    first = measure(board.url)
    assert first[0] == first[1] == first[2] > 0
    board.press_reset()
    assert measure(board.url) == first
    with QemuBoard(board.elf, machine) as fresh:
        assert measure(fresh.url) == first


#: builtin codes of the fake engine's ten operators (tests/c/fake_engine.c, k_fake_codes)
FAKE_CODES = [22, 3, 17, 3, 17, 4, 3, 3, 9, 25]


def test_profile_and_tensor_through_the_emulated_uart(device: DeviceClient, machine: str) -> None:
    """PROFILE pages and TENSOR chunks at the smallest payload, through the emulated UART."""
    from hkdeploy.link import protocol as p

    info = device.hello(host_max_payload=p.MIN_PAYLOAD)
    assert info.op_count == len(FAKE_CODES) and device.features() == p.Feature.PROFILE | p.Feature.TENSOR
    data = frame(3)
    device.set_input(data)
    before = device.stats_device().invokes
    prof = device.profile()  # 10 entries at 6 per 64-byte page: two requests
    again = device.profile()
    assert [o.builtin_code for o in prof.ops] == FAKE_CODES and [o.index for o in prof.ops] == list(range(10))
    assert sum(o.cycles for o in prof.ops) <= prof.cycles_total
    assert prof == again, "SysTick under -icount: the same counts every time"
    for k in (0, 4, 9):
        t = device.tensor(k)  # 300 B in 50-byte chunks, one Invoke() each
        assert t.data == bytes(b ^ k for b in data) and t.tensor_index == 10 + k and t.dtype == 9
    assert device.stats_device().invokes - before == 2 + 3 * 6
    assert device.run(data).output[1:] == expected(data, 0)[1:], "RUN still runs the model"


def test_reset_command_and_reset_button(device: DeviceClient, board: QemuBoard) -> None:
    device.hello()
    for k in (1, 2, 3):
        assert device.run(frame(k)).output == expected(frame(k), k)
    device.reset()  # RESET: the engine starts again, the link core's counters are kept
    device.hello()
    assert device.run(frame(4)).output == expected(frame(4), 1)
    stats = device.stats_device()
    assert stats.inits == 2 and stats.invokes == 4
    board.press_reset()  # the machine's reset: everything restarts as after power-on
    assert device.run(frame(5)).output == expected(frame(5), 1)  # the client HELLOs again by itself
    assert device.stats["resyncs"] == 1
    stats = device.stats_device()
    assert stats.inits == 1 and stats.invokes == 1


def test_runs_through_corruption_and_drops_none_lost_or_duplicated(board: QemuBoard, machine: str) -> None:
    """0.2 % of the bytes corrupted plus 0.04 % dropped and 0.04 % duplicated, both directions, through
    the emulated UART (about one 128-byte packet in three damaged; the virtual EVB's test uses 5x the
    rates with 64-byte packets, too slow at QEMU's UART speed): every output is the right one and the
    device ran exactly one Invoke() per RUN."""
    n = 50
    faulty = FaultyTransport(
        open_serial(board.url, 115200), corrupt=0.002, drop=0.0004, duplicate=0.0004, seed=7
    )
    with DeviceClient(
        board.url, timeouts=Timeouts(packet=0.2, command=60, retries=200), transport=faulty
    ) as dev:
        dev.hello(host_max_payload=128)  # 300 bytes in three chunks
        before = dev.stats_device()
        for k in range(1, n + 1):
            assert dev.run(frame(k)).output == expected(frame(k), k), f"{machine} RUN {k}"
        after = dev.stats_device()
    assert after.invokes - before.invokes == n  # none lost, none run twice
    assert after.cache_hits > before.cache_hits  # retried RUNs were answered from the cache
    assert after.frames_bad >= 5 and faulty.damaged > 50 and dev.stats["retries"] >= 10


def test_reset_button_mid_stream_is_recovered(board: QemuBoard) -> None:
    """QEMU's system_reset every 30 packets during 40 RUNs in 64-byte chunks."""
    faulty = FaultyTransport(open_serial(board.url, 115200), reset_every=30, on_reset=board.press_reset)
    with DeviceClient(
        board.url, timeouts=Timeouts(packet=0.5, command=30, retries=5), transport=faulty
    ) as dev:
        dev.hello(host_max_payload=64)
        outputs = [dev.run(frame(k)).output for k in range(40)]
    for k, out in enumerate(outputs):
        assert out[1:] == expected(frame(k), 0)[1:], k  # invoke counts restart at each reset
    assert faulty.resets >= 5 and dev.stats["resyncs"] >= faulty.resets - 1


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (1, "fault: UsageFault (UNDEFINSTR) PC=0x"),
        (2, "fault: BusFault (PRECISERR) PC=0x"),
        (3, "fault: UsageFault (DIVBYZERO) PC=0x"),
    ],
    ids=["undefined-instruction", "bus-error", "divide-by-zero"],
)
def test_fault_is_reported_as_log_and_the_board_recovers(
    board: QemuBoard, machine: str, kind: int, text: str
) -> None:
    # short waits: the poisoned RUN faults again on every resend, the client gives up after 2 tries
    with DeviceClient(board.url, timeouts=Timeouts(packet=0.5, command=10.0, retries=1)) as device:
        _fault_and_recover(device, machine, kind, text)


def _fault_and_recover(device: DeviceClient, machine: str, kind: int, text: str) -> None:
    device.hello()
    assert device.run(frame(1)).output == expected(frame(1), 1)
    with pytest.raises(DeviceError):  # the fault repeats on every resend: the host gives up, bounded
        device.run(fault_frame(kind))
    deadline = time.monotonic() + 5
    while (
        not any(line.startswith("reset after a fault") for line in device.logs)
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert any(line.startswith(text) for line in device.logs), device.logs
    assert any("CFSR=" in line and line.endswith("; reset") for line in device.logs), device.logs
    if kind == 2:
        assert any(f"BFAR={MACHINES[machine].unmapped_address:#010x}" in line for line in device.logs)
    assert any(line.startswith("reset after a fault: ") for line in device.logs)
    device.resync()  # the board rebooted (system reset): HELLO again, then it works
    assert device.run(frame(2)).output == expected(frame(2), 1)
    assert device.stats_device().inits == 1


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_no_stray_qemu_after_stop(qemu_elfs: dict[str, Path]) -> None:
    board = QemuBoard(qemu_elfs["mps2-an386"], "mps2-an386").start()
    pid = board.pid
    assert pid is not None and qemu_processes_running(str(qemu_elfs["mps2-an386"]))
    monitor = board.monitor_path
    board.stop()
    assert not _alive(pid) and board.pid is None
    assert monitor is not None and not monitor.exists()


def test_qemu_dies_with_its_parent(qemu_elfs: dict[str, Path], tmp_path: Path) -> None:
    """A host process killed with SIGKILL (no atexit, no finally) still leaves no QEMU behind."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hkdeploy.platforms.qemu_process import QemuBoard\n"
        f"b = QemuBoard(Path({str(qemu_elfs['mps2-an386'])!r}), 'mps2-an386').start()\n"
        "print(b.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout is not None
        qemu_pid = int(parent.stdout.readline())
        assert _alive(qemu_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(qemu_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(qemu_pid)
    finally:
        parent.kill()
        parent.wait(timeout=10)

"""The virtual EVB end to end: the firmware core + TFLM engine on a pty, driven by the real client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial
import serial.rfc2217

from hkdeploy.boards import get_board
from hkdeploy.errors import DeviceError
from hkdeploy.link.client import DeviceClient, Timeouts
from hkdeploy.platforms.host import build_virtual_evb
from hkdeploy.platforms.host_process import HostPort


@pytest.fixture(scope="session")
def host_binary(exported_demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_virtual_evb(exported_demo.export_dir, tmp_path_factory.mktemp("hostport"))


@pytest.fixture(scope="session")
def golden(exported_demo: Any) -> tuple[np.ndarray, np.ndarray, bytes]:
    with np.load(exported_demo.export_dir / "test_data.npz") as d:
        raw, tflm = d["input_raw"], d["tflm"]
    return raw, tflm, bytes.fromhex(exported_demo.model_info.sha256)


@pytest.fixture
def device(host_binary: Path, tmp_path: Path) -> Iterator[DeviceClient]:
    limits = get_board("sim").limits()
    with HostPort(
        host_binary, "sim:apollo4p_evb", limits.app_bytes, limits.sram_bytes, log_path=tmp_path / "hp.log"
    ) as hp:
        client = DeviceClient(hp.url, timeouts=Timeouts(packet=2.0, command=20.0))
        try:
            yield client
        finally:
            client.close()


def test_hello_and_1000_runs_bit_exact_with_tflm(
    device: DeviceClient, golden: Any, exported_demo: Any
) -> None:
    raw, tflm, sha = golden
    info = device.check_ready(sha)
    assert info.board == "sim:apollo4p_evb" and info.alloc_status == 0
    assert info.arena_size == exported_demo.arena.board and info.arena_used == exported_demo.arena.host_min
    assert info.input.nbytes == 1250 and info.max_payload == 1600
    for i in range(1000):
        k = i % len(raw)
        result = device.run(raw[k].tobytes())
        assert np.array_equal(np.frombuffer(result.output, np.int8), tflm[k]), f"frame {i}"
        assert result.cycles > 0
    assert device.stats["retries"] == 0


def test_perf_and_reset(device: DeviceClient, golden: Any) -> None:
    raw, tflm, sha = golden
    device.check_ready(sha)
    device.run(raw[0].tobytes())
    perf = device.perf(warmup=3, runs=15)
    assert perf.runs == 15 and 0 < perf.cycles_min <= perf.cycles_median <= perf.cycles_max
    assert perf.cpu_hz == 1_000_000_000  # host port: cycles are nanoseconds of host time
    device.reset()
    device.check_ready(sha)
    assert np.array_equal(np.frombuffer(device.run(raw[1].tobytes()).output, np.int8), tflm[1])


def test_stale_model_hash_is_refused(device: DeviceClient) -> None:
    with pytest.raises(DeviceError) as err:
        device.check_ready(b"\x11" * 32)
    assert "stale firmware" in err.value.message and "flash" in (err.value.hint or "")


def test_allocation_failure_is_refused_with_the_size_needed(
    exported_demo: Any, golden: Any, tmp_path: Path
) -> None:
    needed = exported_demo.arena.host_min
    binary = build_virtual_evb(exported_demo.export_dir, tmp_path / "small", arena_size=needed - 64)
    with (
        HostPort(binary, "sim:apollo4p_evb") as hp,
        DeviceClient(hp.url, timeouts=Timeouts(packet=2.0)) as dev,
    ):
        with pytest.raises(DeviceError) as err:
            dev.check_ready(golden[2])
        assert "AllocateTensors failed" in err.value.message and f"needs {needed} B" in err.value.message
        with pytest.raises(DeviceError, match=r"initialise|ENGINE"):
            dev.run(golden[0][0].tobytes())


def test_model_too_big_for_the_emulated_board(host_binary: Path, golden: Any) -> None:
    with (
        HostPort(host_binary, "sim:tiny", mram_bytes=1000, sram_bytes=1 << 20) as hp,
        DeviceClient(hp.url) as dev,
    ):
        with pytest.raises(DeviceError, match="does not fit the board's MRAM"):
            dev.check_ready(golden[2])


def test_no_stray_process_after_stop(host_binary: Path) -> None:
    with HostPort(host_binary) as hp:
        pid = hp.pid
        assert pid is not None
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_silent_port_gets_first_contact_hint(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        with DeviceClient(
            os.ttyname(slave), timeouts=Timeouts(connect=0.3, packet=0.2, command=2, retries=1)
        ) as dev:
            with pytest.raises(DeviceError) as err:
                dev.hello()
        assert "no answer to HELLO" in err.value.message and "baud" in (err.value.hint or "")
    finally:
        os.close(master)
        os.close(slave)


def test_unopenable_port_has_a_hint() -> None:
    with pytest.raises(DeviceError) as err:
        DeviceClient("/dev/ttyNOPE0")
    assert "cannot open /dev/ttyNOPE0" in err.value.message and err.value.hint


def test_1000_runs_through_corruption_and_drops_none_lost_or_duplicated(
    host_binary: Path, golden: Any
) -> None:
    """1 % of the bytes corrupted plus 0.2 % dropped and 0.2 % duplicated, both directions: every
    output equals the clean run's, and the device's own counter shows exactly one Invoke() per RUN."""
    from hkdeploy.link.client import open_serial
    from tests.doubles.faults import FaultyTransport

    raw, tflm, sha = golden
    n = 1000
    with HostPort(host_binary, "sim:apollo4p_evb") as hp:
        faulty = FaultyTransport(
            open_serial(hp.url, 115200), corrupt=0.01, drop=0.002, duplicate=0.002, seed=7
        )
        with DeviceClient(
            hp.url, timeouts=Timeouts(packet=0.01, command=60, retries=400), transport=faulty
        ) as dev:
            dev.hello(host_max_payload=64)  # small packets: at 1 % byte errors many still get through
            dev.check_ready(sha)
            before = dev.stats_device()  # (the host port serves one client: read its counters here)
            outputs = [dev.run(raw[k % len(raw)].tobytes()).output for k in range(n)]
            after = dev.stats_device()
    for k, out in enumerate(outputs):
        assert np.array_equal(np.frombuffer(out, np.int8), tflm[k % len(raw)]), k
    assert after.invokes - before.invokes == n  # none lost, none run twice
    assert after.cache_hits > before.cache_hits  # retried RUNs were answered from the cache
    assert after.frames_bad > 100 and faulty.damaged > 5000 and dev.stats["retries"] > 500


def test_truncated_and_delayed_packets_are_recovered(host_binary: Path, golden: Any) -> None:
    from hkdeploy.link.client import open_serial
    from tests.doubles.faults import FaultyTransport

    raw, tflm, sha = golden
    with HostPort(host_binary, "sim:apollo4p_evb") as hp:
        faulty = FaultyTransport(
            open_serial(hp.url, 115200), truncate=0.05, delay=0.05, max_delay=0.005, seed=11
        )
        with DeviceClient(
            hp.url, timeouts=Timeouts(packet=0.02, command=30, retries=50), transport=faulty
        ) as dev:
            dev.hello(host_max_payload=128)
            dev.check_ready(sha)
            before = dev.stats_device()
            outputs = [dev.run(raw[k].tobytes()).output for k in range(100)]
            after = dev.stats_device()
    for k, out in enumerate(outputs):
        assert np.array_equal(np.frombuffer(out, np.int8), tflm[k]), k
    assert faulty.truncated > 50 and faulty.delays > 50 and after.invokes - before.invokes == 100


def test_device_reset_mid_stream_is_recovered(host_binary: Path, golden: Any) -> None:
    """The virtual EVB's reset button pressed every 150 packets during 200 RUNs (64-byte chunks):
    the client HELLOs again and resends, and every output is still the golden one."""
    from hkdeploy.link.client import open_serial
    from tests.doubles.faults import FaultyTransport

    raw, tflm, sha = golden
    with HostPort(host_binary, "sim:apollo4p_evb") as hp:
        faulty = FaultyTransport(open_serial(hp.url, 115200), reset_every=150, on_reset=hp.press_reset)
        with DeviceClient(
            hp.url, timeouts=Timeouts(packet=0.5, command=30, retries=5), transport=faulty
        ) as dev:
            dev.hello(host_max_payload=64)
            dev.check_ready(sha)
            outputs = [dev.run(raw[k].tobytes()).output for k in range(200)]
            stats = dev.stats_device()
    for k, out in enumerate(outputs):
        assert np.array_equal(np.frombuffer(out, np.int8), tflm[k]), k
    assert faulty.resets >= 20 and dev.stats["resyncs"] >= faulty.resets - 1
    assert stats.inits == 1  # counters restart at a reset, like a board's RAM


def test_stats_and_reset_counters(device: DeviceClient, golden: Any) -> None:
    raw, _, sha = golden
    device.check_ready(sha)
    first = device.stats_device()
    for k in range(3):
        device.run(raw[k].tobytes())
    device.perf(warmup=1, runs=4)
    second = device.stats_device()
    assert second.invokes - first.invokes == 3 + 5 and second.frames_ok - first.frames_ok == 3 + 1 + 1
    device.reset()
    assert device.stats_device().inits == first.inits + 1  # a RESET command keeps the counters


def test_host_port_dies_with_its_parent(host_binary: Path, tmp_path: Path) -> None:
    """A host process killed with SIGKILL (no atexit, no finally) leaves no virtual EVB behind."""
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hkdeploy.platforms.host_process import HostPort\n"
        f"hp = HostPort(Path({str(host_binary)!r})).start()\n"
        "print(hp.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    pid = int(child.stdout.readline())
    os.kill(pid, 0)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        try:  # it may linger as a zombie of init until reaped: that is gone too
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().split(")")[1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the host port outlived its parent")


@pytest.mark.parametrize("baud", [115200, 921600])
def test_paced_link_is_never_faster_than_the_line(host_binary: Path, golden: Any, baud: int) -> None:
    """8N1 emulation: 10 bits per byte each way, so RUNs can't beat the bytes' line time plus the
    invokes (a lower bound only: a loaded machine is slower, never faster; the achieved/bound ratio
    itself is measured in bench/link_bench.py)."""
    import time

    raw, _, sha = golden
    with HostPort(host_binary, "sim:apollo4p_evb", baud=baud) as hp, DeviceClient(hp.url, baud) as dev:
        dev.check_ready(sha)
        n = 20 if baud > 200000 else 5
        start = time.monotonic()
        invoke_s = sum(dev.run(raw[k].tobytes()).micros for k in range(n)) / 1e6
        elapsed = time.monotonic() - start
    # fewest bytes a packet can take: header 8 + payload + CRC 4 + one COBS code byte + the delimiter
    frame_in = 8 + 4 + raw[0].nbytes + 4 + 2  # RUN: offset + the tensor
    frame_out = 8 + 12 + 4 + 4 + 2  # cycles, micros, output_bytes + the 4 output bytes
    bound_s = n * (frame_in + frame_out) * 10 / baud + invoke_s  # the line can't overlap Invoke()
    assert elapsed >= 0.98 * bound_s, f"{elapsed:.3f} s for {bound_s:.3f} s of line and invoke time"


class _PtyPort(serial.Serial):
    """A pty as the serial server's port: it has no modem lines (the ioctls fail with ENOTTY), so they
    read as idle and writes to RTS/DTR are dropped, where a USB-serial adapter would honour them."""

    cts = dsr = ri = cd = property(lambda self: False)

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass


@pytest.mark.parametrize("scheme", ["socket", "rfc2217"])
def test_network_url_reaches_the_device(host_binary: Path, golden: Any, scheme: str) -> None:
    """A board in a lab rack behind a TCP serial server: the client speaks to `socket://host:port` (raw
    TCP, as ser2net's raw mode) or `rfc2217://host:port` (Telnet COM-port control, as ser2net's telnet
    mode and pyserial's RFC 2217 server). The server here is a test double: a thread that bridges one
    TCP connection to the virtual EVB's pty, through pyserial's RFC 2217 port manager for `rfc2217`."""
    import select
    import socket
    import threading

    raw, tflm, sha = golden
    with HostPort(host_binary, "sim:apollo4p_evb") as hp:
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        stop = threading.Event()
        negotiated: list[int] = []

        def bridge() -> None:
            conn, _ = server.accept()
            pty = _PtyPort(hp.url, timeout=0)  # raw mode: no echo, no CR/LF translation

            class _Conn:  # what the port manager writes Telnet answers to
                def write(self, data: bytes) -> None:
                    conn.sendall(data)

            manager = serial.rfc2217.PortManager(pty, _Conn()) if scheme == "rfc2217" else None
            try:
                while not stop.is_set():
                    ready, _, _ = select.select([conn, pty.fileno()], [], [], 0.05)
                    if conn in ready:
                        data = conn.recv(65536)
                        if not data:
                            break
                        pty.write(b"".join(manager.filter(data)) if manager else data)
                    if pty.fileno() in ready:
                        data = pty.read(65536)
                        conn.sendall(b"".join(manager.escape(data)) if manager else data)
                if manager is not None:
                    negotiated.append(pty.baudrate)
            finally:
                pty.close()
                conn.close()

        t = threading.Thread(target=bridge, daemon=True)
        t.start()
        try:
            with DeviceClient(f"{scheme}://127.0.0.1:{port}", baud=230400) as dev:
                assert dev.check_ready(sha).board == "sim:apollo4p_evb"
                for k in range(20):
                    assert np.array_equal(np.frombuffer(dev.run(raw[k].tobytes()).output, np.int8), tflm[k])
                assert dev.stats["retries"] == 0
        finally:
            stop.set()
            t.join(timeout=5)
            server.close()
    if scheme == "rfc2217":
        assert negotiated == [230400]  # the client's line settings reached the server's port

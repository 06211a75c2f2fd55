"""Pipelined RUNs on the virtual EVB: W requests in flight, results in order, exactly once under faults."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.link.client import DeviceClient, Timeouts, open_serial
from hkdeploy.link.pipeline import run_many, window_for
from hkdeploy.platforms.host import build_virtual_evb
from hkdeploy.platforms.host_process import HostPort
from tests.doubles.faults import FaultyTransport


@pytest.fixture(scope="session")
def host_binary(exported_demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_virtual_evb(exported_demo.export_dir, tmp_path_factory.mktemp("hostport"))


@pytest.fixture(scope="session")
def golden(exported_demo: Any) -> tuple[np.ndarray, np.ndarray, bytes]:
    with np.load(exported_demo.export_dir / "test_data.npz") as d:
        raw, tflm = d["input_raw"], d["tflm"]
    return raw, tflm, bytes.fromhex(exported_demo.model_info.sha256)


def test_device_grants_credits_and_the_window_follows_them(host_binary: Path, golden: Any) -> None:
    raw, _, sha = golden
    with HostPort(host_binary, "sim:apollo4p_evb") as hp, DeviceClient(hp.url) as dev:
        info = dev.check_ready(sha)
        assert info.rx_credits == 4
        assert window_for(dev, raw[0].nbytes) == 4
        assert window_for(dev, raw[0].nbytes, window=2) == 2
        assert window_for(dev, raw[0].nbytes, window=99) == 4  # never more than granted
    with HostPort(host_binary, "sim:apollo4p_evb") as hp, DeviceClient(hp.url) as dev:
        dev.hello(host_max_payload=64)  # a frame needs several RUN chunks: one at a time
        assert window_for(dev, raw[0].nbytes) == 1


@pytest.mark.parametrize("window", [1, 2, 4])
def test_pipelined_outputs_are_bit_exact_in_order_and_run_once(
    host_binary: Path, golden: Any, window: int
) -> None:
    raw, tflm, sha = golden
    n = 300
    with HostPort(host_binary, "sim:apollo4p_evb") as hp, DeviceClient(hp.url) as dev:
        dev.check_ready(sha)
        before = dev.stats_device()
        outputs = [r.output for r in run_many(dev, (raw[k % len(raw)].tobytes() for k in range(n)), window)]
        after = dev.stats_device()
    assert len(outputs) == n
    for k, out in enumerate(outputs):
        assert np.array_equal(np.frombuffer(out, np.int8), tflm[k % len(raw)]), k
    assert after.invokes - before.invokes == n and dev.stats["retries"] == 0


def test_pipelined_runs_through_faults_none_lost_or_duplicated(host_binary: Path, golden: Any) -> None:
    """Byte corruption, drops, duplicates, truncated packets and delays in both directions with 4
    RUNs in flight: every output is the golden one, in order, and the device's own counter shows one
    Invoke() per frame (resent RUNs that had run were answered from the cache)."""
    raw, tflm, sha = golden
    n = 400
    with HostPort(host_binary, "sim:apollo4p_evb") as hp:
        faulty = FaultyTransport(
            open_serial(hp.url, 115200),
            corrupt=0.0002,
            drop=0.0001,
            duplicate=0.0001,
            truncate=0.02,
            delay=0.02,
            max_delay=0.003,
            seed=5,
        )
        with DeviceClient(
            hp.url, timeouts=Timeouts(packet=0.05, command=60, retries=60), transport=faulty
        ) as dev:
            dev.check_ready(sha)
            before = dev.stats_device()
            outputs = [r.output for r in run_many(dev, (raw[k % len(raw)].tobytes() for k in range(n)))]
            after = dev.stats_device()
    for k, out in enumerate(outputs):
        assert np.array_equal(np.frombuffer(out, np.int8), tflm[k % len(raw)]), k
    assert len(outputs) == n
    assert after.invokes - before.invokes == n  # none lost, none run twice
    assert after.cache_hits > before.cache_hits  # some resent RUNs had run: answered from the cache
    assert after.frames_bad > 10 and faulty.damaged > 50 and dev.stats["retries"] > 20


def test_device_reset_mid_pipeline_is_recovered(host_binary: Path, golden: Any) -> None:
    raw, tflm, sha = golden
    with HostPort(host_binary, "sim:apollo4p_evb") as hp:
        faulty = FaultyTransport(open_serial(hp.url, 115200), reset_every=37, on_reset=hp.press_reset)
        with DeviceClient(
            hp.url, timeouts=Timeouts(packet=0.3, command=30, retries=8), transport=faulty
        ) as dev:
            dev.check_ready(sha)
            outputs = [r.output for r in run_many(dev, (raw[k].tobytes() for k in range(150)))]
    for k, out in enumerate(outputs):
        assert np.array_equal(np.frombuffer(out, np.int8), tflm[k]), k
    assert faulty.resets >= 3 and dev.stats["resyncs"] >= 1


def test_a_silent_device_fails_within_the_bounds(host_binary: Path, golden: Any) -> None:
    """The device stops answering mid-pipeline (SIGSTOP): a DeviceError after the retries, not a hang."""
    import os
    import signal

    from hkdeploy.errors import DeviceError

    raw, _, sha = golden
    with HostPort(host_binary, "sim:apollo4p_evb") as hp:
        with DeviceClient(hp.url, timeouts=Timeouts(packet=0.1, command=5, retries=2)) as dev:
            dev.check_ready(sha)
            results = run_many(dev, (raw[k % len(raw)].tobytes() for k in range(1000)))
            next(results)
            os.kill(hp.pid, signal.SIGSTOP)
            try:
                start = time.monotonic()
                with pytest.raises(DeviceError) as err:
                    for _ in results:
                        pass
                elapsed = time.monotonic() - start
            finally:
                os.kill(hp.pid, signal.SIGCONT)
    assert "after 3 tries" in err.value.message and err.value.hint
    assert elapsed < 5.0


def test_an_echoed_request_is_never_taken_for_its_answer(host_binary: Path, golden: Any) -> None:
    """A line that loops our bytes back (a TEST DOUBLE transport echoing every write) delivers our
    own RUN requests, same type and seq, before the device's answers: the outputs stay the device's.
    (The echo starts after HELLO: the request/answer path of DeviceClient.request is checked
    elsewhere.)"""
    from hkdeploy.link.client import open_serial

    raw, tflm, sha = golden

    class EchoingTransport:  # TEST DOUBLE: every write is also read back, between the device's frames
        def __init__(self, inner: Any) -> None:
            self.inner, self.echo, self.on, self.between = inner, bytearray(), False, True
            self.echoed = 0

        @property
        def in_waiting(self) -> int:
            return int(self.inner.in_waiting) or (len(self.echo) if self.between else 0)

        def read(self, n: int = 1) -> bytes:
            if self.echo and self.between:
                out, self.echo = bytes(self.echo), bytearray()
                self.echoed += out.count(0)
                return out
            data = bytes(self.inner.read(n))
            if data:
                self.between = data.endswith(b"\x00")
            return data

        def write(self, data: bytes) -> int:
            if self.on:
                self.echo += data
            return int(self.inner.write(data))

        def close(self) -> None:
            self.inner.close()

    with HostPort(host_binary, "sim:apollo4p_evb") as hp:
        echoing = EchoingTransport(open_serial(hp.url, 115200))
        with DeviceClient(hp.url, transport=echoing) as dev:
            dev.check_ready(sha)
            echoing.on = True
            outputs = [r.output for r in run_many(dev, (raw[k].tobytes() for k in range(50)))]
    assert echoing.echoed >= 50  # every request came back at least once
    for k, out in enumerate(outputs):
        assert np.array_equal(np.frombuffer(out, np.int8), tflm[k]), k

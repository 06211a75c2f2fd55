"""A real labgrid lab on 127.0.0.1: coordinator + exporter + virtual EVBs, started and torn down here.

The exporter exports each virtual EVB's pty as a RawSerialPort (its path must start with /dev/; a
pty is /dev/pts/N), which labgrid serves as a NetworkSerialPort through ser2net (RFC 2217) once a
place holding it is acquired. Every process runs in its own process group with a bounded start and
is killed (group-wide: ser2net children too) at the end; the test process keeps each pty's slave
open so the virtual EVB outlives the connections ser2net opens and closes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hkdeploy.boards import get_board
from hkdeploy.platforms.host import build_virtual_evb
from hkdeploy.platforms.host_process import HostPort

LAB_SKIP = (
    "needs labgrid and ser2net: pip install 'hkdeploy[lab]' && pip install --force-reinstall "
    "--no-deps pyserial-labgrid; apt-get install ser2net"
)
BIN = Path(sys.executable).parent


def _have_lab() -> bool:
    try:
        import labgrid.remote.generated.labgrid_coordinator_pb2  # noqa: F401
    except ImportError:
        return False
    ser2net = shutil.which("ser2net") or (
        Path("/usr/sbin/ser2net") if Path("/usr/sbin/ser2net").exists() else None
    )
    return bool(ser2net) and (BIN / "labgrid-coordinator").exists() and (BIN / "labgrid-exporter").exists()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _have_lab():
        return
    skip = pytest.mark.skip(reason=LAB_SKIP)
    for item in items:
        if "tests/lab/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Proc:
    """A child in its own process group; ``stop`` kills the group (bounded)."""

    def __init__(self, argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.fh = open(log, "ab")
        self.p = subprocess.Popen(
            argv, cwd=cwd, stdout=self.fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        try:
            os.killpg(self.p.pid, sig)
            self.p.wait(timeout=5)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(timeout=5)
        try:  # what the group started (ser2net) must not outlive it
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.fh.close()


class LabFarm:
    """Coordinator + exporter on loopback; places ``hk-a``/``hk-b`` (tag board=sim-evb) and ``hk-c``
    (tag board=sim-paced, a virtual EVB paced at 921600 baud so a run lasts seconds)."""

    def __init__(self, tmp: Path, ptys: dict[str, str]) -> None:
        self.tmp = tmp
        self.ptys = ptys
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.coordinator: Proc | None = None
        self.exporter: Proc | None = None
        # hkdeploy runs as testhost/tester; labgrid-client (self.client) as someone else
        self.env = {
            **os.environ,
            "LG_COORDINATOR": self.address,
            "LG_USERNAME": "tester",
            "LG_HOSTNAME": "testhost",
        }
        lines = []
        for group, pty in ptys.items():
            lines += [f"{group}:", "  RawSerialPort:", f"    port: {pty}", "    speed: 921600"]
        (tmp / "exporter.yaml").write_text("\n".join(lines) + "\n")

    def start_coordinator(self) -> None:
        self.coordinator = Proc(
            [str(BIN / "labgrid-coordinator"), "-l", self.address],
            self.tmp,
            self.tmp / "coordinator.log",
        )
        self._wait(lambda: _listening(self.port), 30, "the coordinator did not listen")

    def start_exporter(self) -> None:
        self.exporter = Proc(
            [
                str(BIN / "labgrid-exporter"),
                "-c",
                self.address,
                "-n",
                "rack1",
                "--hostname",
                "127.0.0.1",
                str(self.tmp / "exporter.yaml"),
            ],
            self.tmp,
            self.tmp / "exporter.log",
        )
        self._wait(lambda: len(self.resources()) >= len(self.ptys), 30, "the exporter did not announce")

    def _wait(self, cond: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.2)
        raise AssertionError(f"{what} within {timeout} s (see {self.tmp})")

    def session(self, name: str = "testhost/tester") -> Any:
        from hkdeploy.lab.coordinator import Session

        return Session(self.address, timeout=5.0, name=name)

    def resources(self) -> list[Any]:
        with self.session() as s:
            return [r for r in s.resources.values() if r.cls == "NetworkSerialPort"]

    def places(self) -> dict[str, Any]:
        with self.session() as s:
            return dict(s.places)

    def add_places(self) -> None:
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2
        from labgrid.remote.generated import labgrid_coordinator_pb2_grpc as pb2_grpc

        tags = {"hk-a": "sim-evb", "hk-b": "sim-evb", "hk-c": "sim-paced"}
        with grpc.insecure_channel(self.address) as ch:
            stub = pb2_grpc.CoordinatorStub(ch)
            for place, group in zip(tags, self.ptys, strict=True):
                stub.AddPlace(pb2.AddPlaceRequest(name=place), timeout=5)
                stub.AddPlaceMatch(
                    pb2.AddPlaceMatchRequest(placename=place, pattern=f"rack1/{group}/NetworkSerialPort"),
                    timeout=5,
                )
                stub.SetPlaceTags(
                    pb2.SetPlaceTagsRequest(placename=place, tags={"board": tags[place]}), timeout=5
                )
        # the coordinator saves places.yaml a moment later: a restarted coordinator must know them
        self._wait(
            lambda: "hk-c" in (self.tmp / "places.yaml").read_text(), 30, "places.yaml was not written"
        )

    def client(self, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
        """labgrid's own client, as another user (LG_USERNAME/LG_HOSTNAME)."""
        env = {**self.env, "LG_USERNAME": user, "LG_HOSTNAME": "labpc"}
        return subprocess.run(
            [str(BIN / "labgrid-client"), "-x", self.address, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def stop(self) -> None:
        for p in (self.exporter, self.coordinator):
            if p is not None:
                p.stop()


@pytest.fixture(scope="module")
def lab_host_binary(exported_demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_virtual_evb(exported_demo.export_dir, tmp_path_factory.mktemp("lab_hostport"))


@pytest.fixture(scope="module")
def farm(lab_host_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabFarm]:
    tmp = tmp_path_factory.mktemp("labfarm")
    limits = get_board("sim").limits()
    evbs = [
        HostPort(
            lab_host_binary,
            "sim:apollo4p_evb",
            limits.app_bytes,
            limits.sram_bytes,
            log_path=tmp / f"{g}.log",
            baud=b,
        )
        for g, b in (("evb-a", 0), ("evb-b", 0), ("evb-c", 921600))
    ]
    held: list[int] = []
    lab: LabFarm | None = None
    try:
        for hp in evbs:
            hp.start()
            held.append(os.open(hp.url, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK))
        lab = LabFarm(tmp, {g: hp.url for g, hp in zip(("evb-a", "evb-b", "evb-c"), evbs, strict=True)})
        lab.start_coordinator()
        lab.start_exporter()
        lab.add_places()
        lab.evbs = evbs  # type: ignore[attr-defined]
        yield lab
    finally:
        if lab is not None:
            lab.stop()
        for fd in held:
            os.close(fd)
        for hp in evbs:
            hp.stop()

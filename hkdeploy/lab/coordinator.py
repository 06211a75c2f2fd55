"""A client session on a labgrid coordinator (gRPC, labgrid >= 25.0), synchronous and bounded.

What labgrid's own client does, reduced to what hkdeploy needs: one ``ClientStream`` that announces
us as ``host/user`` (``LG_HOSTNAME``/``LG_USERNAME`` as labgrid-client reads them), subscribes to
every place and resource and is kept in step with ``Sync`` messages; ``AcquirePlace`` and
``ReleasePlace`` on the same channel (the coordinator knows the user by the channel's peer).
Every call has a deadline; a stream that ends (coordinator stopped, killed, unreachable) marks the
session lost, which :meth:`Session.check` turns into a :class:`LabError` (exit 3).

Imports labgrid's generated protobuf modules and grpc: install with ``pip install 'hkdeploy[lab]'``.
"""

from __future__ import annotations

import getpass
import itertools
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from hkdeploy.errors import DeviceError, ToolError

log = logging.getLogger("hkdeploy.lab")

DEFAULT_COORDINATOR = "127.0.0.1:20408"
LAB_INSTALL = (
    "pip install 'hkdeploy[lab]' && pip install --force-reinstall --no-deps pyserial-labgrid "
    "(and on the exporter hosts: apt-get install ser2net)"
)


class LabError(DeviceError):
    """The lab farm is unreachable or a place can't be had (exit 3)."""


def coordinator_address(configured: str | None) -> str:
    """The coordinator's address: the config's ``lab.coordinator``, else ``$LG_COORDINATOR``, else the default."""
    address = configured or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR
    # labgrid-client accepts ws://host:port/ws from the crossbar days; gRPC wants host:port
    for prefix in ("grpc://", "ws://"):
        if address.startswith(prefix):
            address = address[len(prefix) :].split("/", 1)[0]
    return address


def user_name() -> str:
    """Who we are to the coordinator: ``host/user``, as labgrid-client names itself."""
    host = os.environ.get("LG_HOSTNAME") or socket.gethostname()
    user = os.environ.get("LG_USERNAME") or getpass.getuser()
    return f"{host}/{user}"


def _modules() -> tuple[Any, Any, Any]:
    try:
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2
        from labgrid.remote.generated import labgrid_coordinator_pb2_grpc as pb2_grpc
    except ImportError as exc:
        raise ToolError(f"labgrid is not installed ({exc})", hint=LAB_INSTALL) from exc
    return grpc, pb2, pb2_grpc


@dataclass
class Resource:
    """A resource an exporter announced (e.g. a NetworkSerialPort)."""

    exporter: str
    group: str
    name: str
    cls: str
    params: dict[str, Any]
    acquired: str | None
    avail: bool


@dataclass
class Match:
    exporter: str
    group: str
    cls: str
    name: str | None = None

    def matches(self, r: Resource) -> bool:
        return (
            fnmatchcase(r.exporter, self.exporter)
            and fnmatchcase(r.group, self.group)
            and fnmatchcase(r.cls, self.cls)
            and (not self.name or fnmatchcase(r.name, self.name))
        )


@dataclass
class Place:
    name: str
    tags: dict[str, str]
    matches: list[Match]
    acquired: str | None
    aliases: list[str] = field(default_factory=list)

    def has(self, r: Resource) -> bool:
        return any(m.matches(r) for m in self.matches)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("kind")
    return None if kind is None else getattr(v, kind)


class Session:
    """One client session; use as a context manager (the stream and channel close on exit).

    Raises (on entry):
        ToolError: labgrid/grpc not installed.
        LabError: the coordinator did not answer within ``timeout`` seconds.
    """

    def __init__(self, address: str, timeout: float = 10.0, name: str | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.name = name or user_name()
        self._grpc, self._pb2, pb2_grpc = _modules()
        self._channel = self._grpc.insecure_channel(
            address,
            options=[
                ("grpc.keepalive_time_ms", 2000),  # notice a dead coordinator within seconds
                ("grpc.keepalive_timeout_ms", 3000),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        self._stub = pb2_grpc.CoordinatorStub(self._channel)
        self._out: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._sync_ids = itertools.count(1)
        self._synced: dict[int, threading.Event] = {}
        self.resources: dict[tuple[str, str, str], Resource] = {}
        self.places: dict[str, Place] = {}
        self.changed = threading.Condition(self._lock)
        self.lost: str | None = None
        self._call: Any = None
        self._pump: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Session:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        try:
            self._grpc.channel_ready_future(self._channel).result(timeout=self.timeout)
        except self._grpc.FutureTimeoutError as exc:
            raise self._unreachable(f"no answer within {self.timeout:g} s") from exc
        msg = self._pb2.ClientInMessage()
        msg.startup.version = "hkdeploy"
        msg.startup.name = self.name
        self._out.put(msg)
        for what in ("all_places", "all_resources"):
            msg = self._pb2.ClientInMessage()
            setattr(msg.subscribe, what, True)
            self._out.put(msg)
        self._call = self._stub.ClientStream(self._requests())
        self._pump = threading.Thread(target=self._receive, name="hkdeploy-lab-stream", daemon=True)
        self._pump.start()
        self.sync()

    def close(self) -> None:
        self._out.put(None)
        if self._call is not None:
            self._call.cancel()
        if self._pump is not None:
            self._pump.join(timeout=2.0)
        self._channel.close()

    def _unreachable(self, why: str) -> LabError:
        return LabError(
            f"labgrid coordinator at {self.address}: {why}",
            hint="is labgrid-coordinator running there? set lab.coordinator or LG_COORDINATOR to "
            "its host:port (default port 20408)",
        )

    # -- the stream ---------------------------------------------------------------------------
    def _requests(self) -> Iterator[Any]:
        while True:
            msg = self._out.get()
            if msg is None:
                return
            yield msg

    def _receive(self) -> None:
        try:
            for out in self._call:
                with self._lock:
                    for update in out.updates:
                        self._apply(update)
                    if out.HasField("sync"):
                        ev = self._synced.pop(out.sync.id, None)
                        if ev is not None:
                            ev.set()
                    self.changed.notify_all()
            why = "the coordinator closed the session"
        except self._grpc.RpcError as exc:
            why = f"{exc.code().name}: {exc.details()}" if hasattr(exc, "code") else str(exc)
        with self._lock:
            if self.lost is None:
                self.lost = why
            for ev in self._synced.values():
                ev.set()
            self.changed.notify_all()

    def _apply(self, update: Any) -> None:
        kind = update.WhichOneof("kind")
        if kind == "resource":
            r = update.resource
            key = (r.path.exporter_name, r.path.group_name, r.path.resource_name)
            self.resources[key] = Resource(
                key[0],
                key[1],
                key[2],
                r.cls,
                {k: _value(v) for k, v in r.params.items()},
                r.acquired or None,
                r.avail,
            )
        elif kind == "del_resource":
            p = update.del_resource
            self.resources.pop((p.exporter_name, p.group_name, p.resource_name), None)
        elif kind == "place":
            p = update.place
            self.places[p.name] = Place(
                p.name,
                dict(p.tags),
                [
                    Match(m.exporter, m.group, m.cls, m.name if m.HasField("name") else None)
                    for m in p.matches
                ],
                p.acquired if p.HasField("acquired") and p.acquired else None,
                list(p.aliases),
            )
        elif kind == "del_place":
            self.places.pop(update.del_place, None)

    def sync(self) -> None:
        """Wait until the coordinator has sent everything before now (bounded)."""
        ident = next(self._sync_ids)
        ev = threading.Event()
        with self._lock:
            if self.lost is not None:
                raise self._unreachable(f"session lost ({self.lost})")
            self._synced[ident] = ev
        msg = self._pb2.ClientInMessage()
        msg.sync.id = ident
        self._out.put(msg)
        if not ev.wait(self.timeout):
            raise self._unreachable(f"no answer to a sync within {self.timeout:g} s")
        self.check()

    def check(self) -> None:
        """Raise LabError when the session was lost (the coordinator went away)."""
        if self.lost is not None:
            raise self._unreachable(f"session lost ({self.lost})")

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Wait (bounded) until ``predicate()`` holds on the session's state; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or self.lost is not None:
                    return bool(predicate())
                self.changed.wait(left)
            return True

    # -- calls --------------------------------------------------------------------------------
    def acquire(self, place: str) -> None:
        """AcquirePlace. Raises the grpc error (the caller names the holder)."""
        self._stub.AcquirePlace(self._pb2.AcquirePlaceRequest(placename=place), timeout=self.timeout)

    def release(self, place: str) -> None:
        """ReleasePlace, only if we still hold it (``fromuser``: never someone else's lock)."""
        self._stub.ReleasePlace(
            self._pb2.ReleasePlaceRequest(placename=place, fromuser=self.name), timeout=self.timeout
        )

    def rpc_error(self, exc: Exception) -> str:
        if isinstance(exc, self._grpc.RpcError) and hasattr(exc, "code"):
            return f"{exc.code().name}: {exc.details()}"
        return str(exc)

    def is_unavailable(self, exc: Exception) -> bool:
        return (
            isinstance(exc, self._grpc.RpcError)
            and hasattr(exc, "code")
            and exc.code() in (self._grpc.StatusCode.UNAVAILABLE, self._grpc.StatusCode.DEADLINE_EXCEEDED)
        )

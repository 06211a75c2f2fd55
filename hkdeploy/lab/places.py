"""Boards from a labgrid lab: acquire places, serve their serial ports as URLs, release on every exit.

``lab_ports(params, places=[...], tags={...})`` is a context manager: it acquires the named places
(or every free place whose tags match), waits (bounded) until each place's NetworkSerialPort is
served by its exporter (ser2net, RFC 2217 on a fresh port per acquire), and yields the URLs
``rfc2217://host:port?ign_set_control`` (plain RFC 2217 negotiation times out against labgrid's
ser2net: it never answers SET_CONTROL) plus a ``guard`` that raises when the coordinator went away
mid-run. On the way out, by an error, Ctrl-C or SIGTERM, it releases exactly the places this run
acquired (``fromuser``: a place someone else took over is left alone).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

from hkdeploy.config.params import DeployParams
from hkdeploy.console import info, warn
from hkdeploy.errors import DeviceError, UserError
from hkdeploy.lab.coordinator import LabError, Place, Resource, Session, coordinator_address

SERIAL_CLASSES = ("NetworkSerialPort",)


@dataclass
class LabPorts:
    """What ``lab_ports`` yields: one URL per acquired place (same order) and the run's guard."""

    places: list[str]
    urls: list[str]
    session: Session

    def guard(self) -> None:
        """Raise LabError (exit 3) when the coordinator was lost: the places' locks can't be trusted."""
        if self.session.lost is not None:
            raise self.lost_error()

    def lost_error(self) -> LabError:
        return LabError(
            f"lost the labgrid coordinator at {self.session.address} mid-run ({self.session.lost})",
            hint="results so far are kept: when the coordinator is back, rerun with --resume "
            "(a restarted coordinator starts with every place free)",
        )


def parse_tags(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``TAG=VALUE`` options (also comma-separated) -> a dict. Raises UserError on a malformed one."""
    tags: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise UserError(
                    f"--places wants TAG=VALUE, got {part!r}", hint="e.g. --places board=apollo4p"
                )
            tags[key.strip()] = value.strip()
    return tags


def _find(session: Session, name: str) -> Place:
    place = session.places.get(name) or next((p for p in session.places.values() if name in p.aliases), None)
    if place is None:
        known = ", ".join(sorted(session.places)) or "none"
        raise UserError(
            f"no labgrid place {name!r} on {session.address} (places: {known})",
            hint="list them with `labgrid-client places`",
        )
    return place


def _held(place: Place, me: str) -> LabError:
    if place.acquired == me:
        return LabError(
            f"place {place.name} is already acquired by you ({me}), not by this run "
            "(an earlier run killed before it could release it?)",
            hint=f"release it with `labgrid-client -p {place.name} release` if no other run of yours uses it",
        )
    return LabError(
        f"place {place.name} is held by {place.acquired}",
        hint=f"wait for them to release it (`labgrid-client -p {place.name} show`), or pick another place",
    )


def select_places(
    session: Session, names: list[str], tags: dict[str, str], limit: int | None = None
) -> list[Place]:
    """The places to acquire: the named ones (each must be free), then every free one matching
    ``tags`` (at most ``limit`` places in all)."""
    chosen: list[Place] = []
    for name in names:
        place = _find(session, name)
        if place.acquired:
            raise _held(place, session.name)
        if place not in chosen:
            chosen.append(place)
    if tags:
        matching = [
            p
            for _, p in sorted(session.places.items())
            if all(p.tags.get(k) == v for k, v in tags.items()) and p not in chosen
        ]
        if not matching:
            want = ",".join(f"{k}={v}" for k, v in tags.items())
            raise UserError(
                f"no labgrid place on {session.address} has the tags {want}",
                hint="see the places' tags with `labgrid-client places -v`",
            )
        free = [p for p in matching if not p.acquired]
        if not free and not chosen:
            holders = "; ".join(f"{p.name} by {p.acquired}" for p in matching)
            raise LabError(
                f"every place matching the tags is held ({holders})", hint="wait, or pick places by name"
            )
        for p in matching:
            if p.acquired:
                info(f"lab: skipping {p.name}, held by {p.acquired}")
        chosen += free
    if not chosen:
        raise UserError("no lab place given", hint="--place NAME (repeatable) or --places TAG=VALUE")
    return chosen[:limit] if limit else chosen


def _serial_resource(session: Session, place: Place) -> Resource | None:
    for r in sorted(session.resources.values(), key=lambda r: (r.exporter, r.group, r.name)):
        if r.cls in SERIAL_CLASSES and place.has(r):
            return r
    return None


def _served(session: Session, place: Place) -> Resource | None:
    r = _serial_resource(session, place)
    if r is not None and r.acquired == place.name and r.avail and r.params.get("port"):
        return r
    return None


def _wait_listening(host: str, port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False


def _url(session: Session, place: Place, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    if not session.wait_for(lambda: _serial_resource(session, place) is not None, min(timeout, 2.0)):
        raise UserError(
            f"place {place.name} has no serial port (a NetworkSerialPort exported by a RawSerialPort or "
            "USBSerialPort resource)",
            hint="add one to the exporter's YAML and a match to the place (docs/lab.md)",
        )
    if not session.wait_for(
        lambda: _served(session, place) is not None, max(0.0, deadline - time.monotonic())
    ):
        session.check()
        raise LabError(
            f"place {place.name}: its exporter did not serve the serial port within {timeout:g} s",
            hint="is labgrid-exporter running on the rack host, with ser2net installed (apt-get install ser2net)?",
        )
    r = _served(session, place)
    assert r is not None
    host, port = str(r.params.get("host") or "127.0.0.1"), int(r.params["port"])
    if not _wait_listening(host, port, deadline):
        raise LabError(
            f"place {place.name}: nothing listens on {host}:{port} (its ser2net)",
            hint="check the exporter's log; is the rack host reachable from here?",
        )
    return f"rfc2217://{host}:{port}?ign_set_control"


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt in the main thread, so every ``finally`` (release) runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _release(session: Session, names: list[str], timeout: float) -> None:
    if not names:
        return
    if session.lost is not None:
        # the stream died: the coordinator may be back (a restart frees every place anyway)
        try:
            with Session(session.address, timeout=min(timeout, 3.0), name=session.name) as fresh:
                _release(fresh, names, timeout)
        except LabError:
            warn(
                f"lab: could not release {', '.join(names)}: the coordinator at {session.address} is gone "
                "(a restarted coordinator starts with every place free)"
            )
        return
    for name in names:
        try:
            session.release(name)
            info(f"lab: released {name}")
        except Exception as exc:  # grpc errors: report, keep releasing the others
            warn(f"lab: could not release {name}: {session.rpc_error(exc)}")


@contextlib.contextmanager
def lab_ports(
    params: DeployParams, places: list[str], tags: dict[str, str], limit: int | None = None
) -> Iterator[LabPorts]:
    """Acquire the places, yield their serial URLs, release what was acquired (see the module doc).

    Raises:
        ToolError: labgrid not installed (exit 4). UserError: unknown place or tag (exit 2).
        LabError: coordinator unreachable/silent, a place held by someone, its port not served (exit 3).
    """
    address = coordinator_address(params.lab.coordinator)
    acquired: list[str] = []
    with _sigterm_as_interrupt(), Session(address, params.lab.connect_timeout) as session:
        try:
            chosen = select_places(session, places, tags, limit)
            for place in chosen:
                try:
                    session.acquire(place.name)
                except Exception as exc:
                    if session.is_unavailable(exc):
                        raise session._unreachable(session.rpc_error(exc)) from exc
                    session.sync()  # learn who got it first
                    now = session.places.get(place.name, place)
                    if now.acquired and now.acquired != session.name:
                        raise _held(now, session.name) from exc
                    raise LabError(
                        f"cannot acquire place {place.name}: {session.rpc_error(exc)}",
                        hint="see the coordinator's log",
                    ) from exc
                acquired.append(place.name)
                info(f"lab: acquired {place.name} as {session.name}")
            session.sync()
            urls = [_url(session, p, params.lab.acquire_timeout) for p in chosen]
            lab = LabPorts([p.name for p in chosen], urls, session)
            try:
                yield lab
            except DeviceError as exc:
                # a link that failed because the lab went away (an exporter leaves with its
                # coordinator and stops ser2net): name the cause, not the symptom
                if not isinstance(exc, LabError):
                    with contextlib.suppress(LabError):
                        session.sync()
                    if session.lost is not None:
                        raise lab.lost_error() from exc
                raise
        finally:
            _release(session, acquired, params.lab.connect_timeout)


def lab_params(params: DeployParams) -> DeployParams:
    """The params for a run on lab places: a real board reached by URL (never the virtual EVB's own)."""
    from hkdeploy.boards import board_for
    from hkdeploy.platforms import platform_of

    if not platform_of(board_for(params.board)).needs_flash:
        raise UserError(
            f"a lab place is a board, but the config's board is {params.board.name}",
            hint="set the board the places hold: --set board.name=apollo4p_evb (and backend evb)",
        )
    return params if params.backend == "evb" else params.model_copy(update={"backend": "evb"})

"""``hkdeploy run``: export -> build -> flash (for platforms that need it) -> validate.

Stops at the first stage that fails, with that stage's exit code; the error names the stage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams
from hkdeploy.console import info
from hkdeploy.errors import HkDeployError

if TYPE_CHECKING:
    from hkdeploy.lab.places import LabPorts

STAGES = ("export", "build", "flash", "validate")


@dataclass
class RunResult:
    """Stages done (name -> seconds) and what each returned."""

    seconds: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)


@contextmanager
def stage(name: str, result: RunResult) -> Iterator[None]:
    """Time a stage; a failure says which stage it was (its exit code unchanged)."""
    info(f"run: {name}")
    start = time.monotonic()
    try:
        yield
    except HkDeployError as exc:
        exc.message = f"{name} failed: {exc.message}"
        exc.args = (exc.message,)
        raise
    result.seconds[name] = time.monotonic() - start


def run(
    params: DeployParams,
    *,
    board: str | None = None,
    ports: list[str] | None = None,
    skip: tuple[str, ...] = (),
    force: bool = False,
    lab: LabPorts | None = None,
) -> RunResult:
    """The whole chain for the config's board (or ``board``); ``skip`` names stages to leave out.

    ``lab``: acquired labgrid places (their URLs are ``ports``): flash goes through each place's
    exporter host, and validate stops (exit 3) if the coordinator is lost."""
    from hkdeploy.firmware.build import build
    from hkdeploy.platforms import platform_of, target_board

    result = RunResult()
    target = target_board(params, board)
    platform = platform_of(target)
    if "export" not in skip:
        with stage("export", result):
            from hkdeploy.export import export

            result.results["export"] = export(params)
    if "build" not in skip:
        with stage("build", result):
            result.results["build"] = build(params, target.name)
    if "flash" not in skip and platform.needs_flash:
        with stage("flash", result):
            if lab is not None:
                from hkdeploy.lab.flash import flash_places

                result.results["flash"] = flash_places(params, target, lab, force=force)
            else:
                from hkdeploy.flash import flash

                result.results["flash"] = flash(params, target.name, force=force)
                _wait_for_board(params, target, list(ports or []))
    if "validate" not in skip:
        with stage("validate", result):
            from hkdeploy.validate import validate

            result.results["validate"] = validate(
                params, list(ports or []), board=target.name, guard=lab.guard if lab is not None else None
            )
    done = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    info(f"run: done ({done})")
    return result


def _wait_for_board(params: DeployParams, board: Board, ports: list[str]) -> None:
    """After a flash the board resets and its USB port comes back: wait for it (bounded)."""
    from hkdeploy.link.discovery import wait_for_port

    link = params.link
    wanted: list[str | None] = list(ports) or [link.port]
    for port in wanted:
        wait_for_port(
            port,
            link.usb_vid or board.usb_vid,
            link.usb_pid or board.usb_pid,
            link.serial_number,
            timeout=link.connect_timeout,
        )

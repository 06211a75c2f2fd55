"""``hkdeploy doctor``."""

from __future__ import annotations

import click
from rich.table import Table

from hkdeploy.cli import BOARD, cli, with_params
from hkdeploy.config import LoadedConfig
from hkdeploy.console import stdout
from hkdeploy.errors import ToolError


@cli.command("doctor")
@with_params(None)
@BOARD
@click.option("--runner", help="Flash runner to check (default: the config's)")
def doctor_cmd(loaded: LoadedConfig, board: str | None, runner: str | None) -> None:
    """Check what the board needs (toolchain, SDK, flash tool, serial port) and how to get what is missing."""
    from hkdeploy.doctor import diagnose

    target, checks = diagnose(loaded.params, board, runner)
    table = Table(title=f"doctor: {target.name}")
    for col in ("check", "status", "found", "hint"):
        table.add_column(col, overflow="fold")
    for c in checks:
        style = "green" if c.ok else ("red" if c.required else "yellow")
        table.add_row(c.name, f"[{style}]{c.status}[/{style}]", c.detail, "" if c.ok else c.hint)
    stdout.print(table)
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        raise ToolError(
            f"missing for {target.name}: {', '.join(missing)}", hint="see the hints in the table above"
        )

"""``hkdeploy boards``: the board registry as a table."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from hkdeploy.boards import get_board, list_boards
from hkdeploy.cli import cli
from hkdeploy.console import stdout


def _kib(value: int | None) -> str:
    return f"{value // 1024} KiB" if value else "-"


@cli.command("boards")
@click.option(
    "--file",
    "board_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also show your own board file",
)
def boards_cmd(board_file: Path | None) -> None:
    """List the boards hkdeploy knows (platform, memory, J-Link device, load address, neuralSPOT platform)."""
    boards = list_boards() + ([get_board(board_file)] if board_file else [])
    table = Table(title="boards")
    table.add_column("name", no_wrap=True)
    table.add_column("platform", no_wrap=True)
    for col in (
        "core",
        "clock",
        "app MRAM",
        "SRAM",
        "J-Link device",
        "load addr",
        "neuralSPOT",
        "link",
    ):
        table.add_column(col)
    for b in boards:
        limits = b.limits()
        table.add_row(
            b.name,
            b.platform + (f" ({b.qemu_machine})" if b.qemu_machine else ""),
            b.core if not b.emulate else f"host (emulates {b.emulate})",
            f"{limits.clock_hz // 1_000_000} MHz" if limits.clock_hz else "-",
            _kib(limits.app_bytes),
            _kib(limits.sram_bytes),
            b.jlink_device or "-",
            f"0x{b.load_address:X}" if b.load_address is not None else "-",
            b.neuralspot_platform or "-",
            b.link,
        )
    stdout.print(table)

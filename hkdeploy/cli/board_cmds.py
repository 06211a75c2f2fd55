"""``hkdeploy build``, ``flash``, ``doctor``, ``demo`` and ``run``."""

from __future__ import annotations

import click
from rich.table import Table

from hkdeploy.cli import cli, with_params
from hkdeploy.config import LoadedConfig
from hkdeploy.console import stdout
from hkdeploy.errors import ToolError

BOARD = click.option("--board", help="Board to build for (default: the config's; sim with backend sim)")


@cli.command("build")
@with_params("build")
@BOARD
@click.option("--dry-run", is_flag=True, help="Print the build command, run nothing")
@click.option(
    "--app",
    type=click.Choice(["link", "mlperf"]),
    default="link",
    show_default=True,
    help="link: the hkdeploy firmware; mlperf: the MLPerf Tiny DUT image (the benchmark runner's protocol)",
)
def build_cmd(loaded: LoadedConfig, board: str | None, dry_run: bool, app: str) -> None:
    """Render the firmware project for the board from the export and build it (neuralSPOT or sim)."""
    from hkdeploy.build import build
    from hkdeploy.console import info

    result = build(loaded.params, board, dry_run=dry_run, app=app)
    if not dry_run:
        info(f"build: {result.binary} (manifest {result.out_dir / 'build_manifest.json'})")


@cli.command("flash")
@with_params("flash")
@BOARD
@click.option("--runner", help="Flash runner (default: runner.name in the config: jlink or pyocd)")
@click.option("--serial", "serial_number", help="Serial number of the probe (several attached)")
@click.option("--erase/--no-erase", default=None, help="Erase the whole chip first")
@click.option("--reset/--no-reset", default=None, help="Reset and start the program after writing")
@click.option("--force", is_flag=True, help="Flash even if the build is stale (its manifest does not match)")
@click.option("--dry-run", is_flag=True, help="Print the commands, run nothing")
@click.option(
    "--app",
    type=click.Choice(["link", "mlperf"]),
    default="link",
    show_default=True,
    help="Which build to write: the hkdeploy firmware or the MLPerf Tiny DUT image",
)
def flash_cmd(
    loaded: LoadedConfig,
    board: str | None,
    runner: str | None,
    serial_number: str | None,
    erase: bool | None,
    reset: bool | None,
    force: bool,
    dry_run: bool,
    app: str,
) -> None:
    """Write the built firmware to the board (J-Link or pyOCD); refuses a stale binary."""
    from hkdeploy.flash import flash

    flash(
        loaded.params,
        board,
        runner=runner,
        serial_number=serial_number,
        erase=erase,
        reset=reset,
        force=force,
        dry_run=dry_run,
        app=app,
    )


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


@cli.command("demo")
@with_params("demo")
@click.option("--backend", type=click.Choice(["pc", "sim", "evb"]), help="Where to run (default: backend)")
@click.option("--port", help="Serial port/URL of the board (backend evb)")
def demo_cmd(loaded: LoadedConfig, backend: str | None, port: str | None) -> None:
    """Run consecutive frames of one record live; writes demo.html and demo.png."""
    from hkdeploy.demo import demo

    demo(loaded.params, backend, port)


@cli.command("run")
@with_params("run")
@BOARD
@click.option("--port", "ports", multiple=True, help="Serial port/URL of a board (repeatable)")
@click.option(
    "--skip",
    multiple=True,
    type=click.Choice(["export", "build", "flash", "validate"]),
    help="Leave a stage out",
)
@click.option("--force", is_flag=True, help="Flash even a stale build")
def run_cmd(
    loaded: LoadedConfig, board: str | None, ports: tuple[str, ...], skip: tuple[str, ...], force: bool
) -> None:
    """The whole chain: export -> build -> flash (not for sim) -> validate; stops at the first failure."""
    from hkdeploy.pipeline import run

    run(loaded.params, board=board, ports=list(ports), skip=skip, force=force)

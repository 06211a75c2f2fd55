"""``hkdeploy build``, ``flash``, ``doctor``, ``demo`` and ``run``."""

from __future__ import annotations

import click
from rich.table import Table

from hkdeploy.cli import cli, require, with_params
from hkdeploy.cli.lab_options import lab_options
from hkdeploy.config import LoadedConfig
from hkdeploy.console import stdout
from hkdeploy.errors import ToolError

BOARD = click.option("--board", help="Board to build for (default: the config's; sim with backend sim)")


@cli.command("build")
@with_params("build")
@BOARD
@click.option("--dry-run", is_flag=True, help="Print the build command, run nothing")
def build_cmd(loaded: LoadedConfig, board: str | None, dry_run: bool) -> None:
    """Render the firmware project for the board from the export and build it (neuralSPOT or sim)."""
    from hkdeploy.build import build
    from hkdeploy.console import info

    result = build(loaded.params, board, dry_run=dry_run)
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
def flash_cmd(
    loaded: LoadedConfig,
    board: str | None,
    runner: str | None,
    serial_number: str | None,
    erase: bool | None,
    reset: bool | None,
    force: bool,
    dry_run: bool,
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
@lab_options(multiple=False)
def demo_cmd(
    loaded: LoadedConfig,
    backend: str | None,
    port: str | None,
    places: str | None,
    place_tags: tuple[str, ...],
) -> None:
    """Run consecutive frames of one record live; writes demo.html and demo.png."""
    from hkdeploy.demo import demo

    if places or place_tags:
        from hkdeploy.lab.places import lab_params, lab_ports, parse_tags

        require(not port and backend in (None, "evb"), "--place needs the evb backend and no --port")
        params = lab_params(loaded.params)
        with lab_ports(params, [places] if places else [], parse_tags(place_tags), limit=1) as lab:
            demo(params, "evb", lab.urls[0])
        return
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
@lab_options()
def run_cmd(
    loaded: LoadedConfig,
    board: str | None,
    ports: tuple[str, ...],
    skip: tuple[str, ...],
    force: bool,
    places: tuple[str, ...],
    place_tags: tuple[str, ...],
) -> None:
    """The whole chain: export -> build -> flash (not for sim) -> validate; stops at the first failure.

    With --place/--places the places are acquired first and held for the whole chain; each place's
    board is flashed through its exporter host (labgrid's flash-script driver, docs/lab.md)."""
    from hkdeploy.pipeline import run

    if places or place_tags:
        from hkdeploy.lab.places import lab_params, lab_ports, parse_tags

        require(not ports, "--port and --place/--places don't mix", hint="use one or the other")
        params = lab_params(loaded.params)
        with lab_ports(params, list(places), parse_tags(place_tags)) as lab:
            run(params, board=board, ports=lab.urls, skip=skip, force=force, lab=lab)
        return
    run(loaded.params, board=board, ports=list(ports), skip=skip, force=force)

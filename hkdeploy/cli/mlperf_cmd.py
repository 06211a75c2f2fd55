"""``hkdeploy mlperf dataset|devices|check``: MLPerf Tiny DUT mode (see docs/mlperf.md)."""

from __future__ import annotations

from pathlib import Path

import click

from hkdeploy.cli import cli, with_params
from hkdeploy.config import LoadedConfig


def _hex(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 0)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number (e.g. 0x1366)") from None


@cli.group("mlperf")
def mlperf_group() -> None:
    """MLPerf Tiny: the runner's dataset and devices files, and a check of the DUT image."""


@mlperf_group.command("dataset")
@with_params(None)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Dataset root (the runner's --dataset_path; default job_dir/mlperf/datasets)",
)
@click.option("--count", type=click.IntRange(1), help="Inputs to write (default mlperf.dataset_size or all)")
def dataset_cmd(loaded: LoadedConfig, out: Path | None, count: int | None) -> None:
    """Write <out>/<model_id>/ with one .bin per test input and y_labels.csv."""
    from hkdeploy.console import info
    from hkdeploy.mlperf.dataset import TRUTH_FILE, write_dataset

    params = loaded.params
    res = write_dataset(params, out or params.job_dir / "mlperf" / "datasets", count)
    info(f"mlperf dataset: {res.files} inputs of {res.input_bytes} B and {TRUTH_FILE} in {res.folder}")


@mlperf_group.command("devices")
@with_params(None)
@click.option("--port", help="The DUT's serial port (its USB VID/PID are looked up)")
@click.option("--vid", help="USB vendor id instead of --port's (e.g. 0x1366)")
@click.option("--pid", help="USB product id instead of --port's")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="devices file to write (default job_dir/mlperf/devices.yaml)",
)
def devices_cmd(
    loaded: LoadedConfig, port: str | None, vid: str | None, pid: str | None, out: Path | None
) -> None:
    """Write the runner's devices.yaml entry (name, check_name, baud per mode, USB ids) for the DUT."""
    from hkdeploy.cli import require
    from hkdeploy.console import info
    from hkdeploy.mlperf.devices import port_ids, write_devices

    params = loaded.params
    v, p = _hex(vid), _hex(pid)
    require(
        port is not None or (v is not None and p is not None),
        "give the DUT's --port, or --vid and --pid",
        hint="list ports with `python -m serial.tools.list_ports -v`",
    )
    if v is None or p is None:
        assert port is not None
        pv, pp = port_ids(port)
        v, p = v if v is not None else pv, p if p is not None else pp
    path = write_devices(
        out or params.job_dir / "mlperf" / "devices.yaml",
        params.mlperf.dut_name(),
        params.mlperf.model_id,
        v,
        p,
    )
    info(f"mlperf devices: {path} (DUT {params.mlperf.dut_name()}, USB {v:04X}:{p:04X})")


@mlperf_group.command("check")
@with_params("mlperf-check")
@click.option("--port", help="Serial port of a board running the DUT image (default: the virtual EVB)")
@click.option("--board", help="Board whose DUT to start or find (e.g. qemu_m4; default: the config's target)")
@click.option("--count", type=click.IntRange(1), help="Inputs to compare (default mlperf.check_size)")
@click.option("--iterations", type=click.IntRange(1), default=10, show_default=True, help="Timed inferences")
@click.option("--warmups", type=click.IntRange(0), default=2, show_default=True, help="Warm-up inferences")
def check_cmd(
    loaded: LoadedConfig,
    port: str | None,
    board: str | None,
    count: int | None,
    iterations: int,
    warmups: int,
) -> None:
    """Drive the DUT as the runner does (name, profile, db load, infer, results); compare with the golden."""
    from hkdeploy.mlperf.check import check

    check(loaded.params, port, count, iterations, warmups, board_name=board)

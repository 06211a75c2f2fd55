"""Hardware-in-the-loop: a real board flashed with the demo (`hkdeploy run -c configs/demo.json
--set backend=evb --board <board>`), run with ``pytest tests/hil --port /dev/ttyACM0 --board apollo4p_evb``.

Skipped (with that message) when no ``--port`` is given. The golden outputs are the TFLM reference
kernels' (the export's test_data.npz): CMSIS-NN kernels on the board may differ by a few LSB, so
the check is on classes and LSB distance, and exactness is reported, not required.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.boards import get_board
from hkdeploy.link.client import DeviceClient, Timeouts

pytestmark = pytest.mark.hil
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def board_port(request: pytest.FixtureRequest) -> tuple[str, str]:
    ports = request.config.getoption("--port")
    board = request.config.getoption("--board")
    if not board:
        pytest.fail("--board is required with --port (e.g. --board apollo4p_evb)")
    return ports[0], board


@pytest.fixture(scope="module")
def export_dir(request: pytest.FixtureRequest) -> Path:
    path = REPO / "job" / "demo" / "export"
    if not (path / "export_report.json").is_file():
        pytest.fail(f"no export in {path}: run `hkdeploy run -c configs/demo.json --set backend=evb` first")
    return path


@pytest.fixture
def device(board_port: tuple[str, str]) -> Any:
    with DeviceClient(board_port[0], get_board(board_port[1]).uart_baud or 115200, Timeouts()) as dev:
        yield dev


def test_hello_reports_the_flashed_model_and_board(
    device: DeviceClient, board_port: tuple[str, str], export_dir: Path
) -> None:
    report = json.loads((export_dir / "export_report.json").read_text())
    info = device.check_ready(bytes.fromhex(report["model"]["sha256"]))
    board = get_board(board_port[1])
    assert info.board == board.name and 0 < info.cpu_hz <= (board.clock_hz or 0) * 2
    assert 0 < info.arena_used <= info.arena_size == report["arena"]["board"]


def test_runs_match_the_tflm_golden(device: DeviceClient, export_dir: Path) -> None:
    with np.load(export_dir / "test_data.npz") as d:
        raw, golden = d["input_raw"][:50], d["tflm"][:50]
    device.check_ready(None)
    outs = np.stack([np.frombuffer(device.run(f.tobytes()).output, golden.dtype) for f in raw])
    golden = golden.reshape(len(golden), -1)
    assert (outs.argmax(1) == golden.argmax(1)).mean() >= 0.98
    assert np.abs(outs.astype(int) - golden.astype(int)).max() <= 8


def test_perf_and_reset(device: DeviceClient, board_port: tuple[str, str]) -> None:
    device.check_ready(None)
    perf = device.perf(warmup=3, runs=10)
    assert 0 < perf.cycles_min <= perf.cycles_median <= perf.cycles_max
    device.reset()
    assert device.hello().board == get_board(board_port[1]).name


def test_profile_times_every_operator_in_core_cycles(device: DeviceClient, export_dir: Path) -> None:
    """PROFILE on the board: every operator of the export, in the export's order, timed in cycles
    (DWT/PMU), and the operators' sum within the whole Invoke()."""
    from hkdeploy.link import protocol as p
    from hkdeploy.validate.layers import op_name

    report = json.loads((export_dir / "export_report.json").read_text())
    info = device.check_ready(bytes.fromhex(report["model"]["sha256"]))
    layers = report["model"]["layers"]
    assert info.op_count == len(layers) and device.features() & p.Feature.PROFILE
    assert info.counter_kind == 1, "a board counts core cycles"
    with np.load(export_dir / "test_data.npz") as d:
        device.set_input(d["input_raw"][0].tobytes())
    prof = device.profile()
    assert [op_name(o.builtin_code) for o in prof.ops] == [x["op"] for x in layers]
    assert all(o.cycles > 0 for o in prof.ops if layers[o.index]["macs"] > 0)
    assert 0 < sum(o.cycles for o in prof.ops) <= prof.cycles_total

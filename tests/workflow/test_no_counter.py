"""Defect 5 of issue 11: a device with no counter (HELLO counter_kind 0) is "latency not measured",
not 0 cycles.

The device double is the virtual EVB built with ``HK_HOST_NO_COUNTER`` (TEST DOUBLE build: HELLO
says counter_kind 0 and every count is 0, like a board with its debug domain off); validate streams
the demo test set to it through ``--port``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hkdeploy.boards import get_board
from hkdeploy.config import load_params
from hkdeploy.platforms.base import Counter, counter_from_hello
from hkdeploy.platforms.host import build_virtual_evb
from hkdeploy.platforms.host_process import HostPort
from hkdeploy.validate import latency_not_measured, validate

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "demo.json"
HOST_NS = Counter("host ns", "host time", False)


def test_counter_kind_0_is_not_a_measurement() -> None:
    none = counter_from_hello(0, "apollo4p_evb", HOST_NS)
    assert not none.measured and "not measured" in none.label
    assert latency_not_measured(none, [5, 6], {}) == none.label  # kind 0: whatever it counts
    assert counter_from_hello(2, "sim", HOST_NS).measured


def test_all_zero_counts_are_not_a_measurement() -> None:
    reason = latency_not_measured(HOST_NS, [0, 0, 0], {"cycles_min": 0, "cycles_median": 0, "cycles_max": 0})
    assert reason is not None and "0 host ns" in reason and "PERF" in reason
    assert latency_not_measured(HOST_NS, [0, 0], {"cycles_median": 7}) is None  # PERF measured something
    assert latency_not_measured(HOST_NS, [0, 3], {}) is None


@pytest.fixture(scope="module")
def no_counter_binary(exported_demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nocounter")
    return build_virtual_evb(exported_demo.export_dir, out, defines=("HK_HOST_NO_COUNTER",))


def test_validate_says_latency_not_measured(
    exported_demo: Any, no_counter_binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job"
    shutil.copytree(exported_demo.export_dir, job / "export")
    params = load_params(CONFIG, job_dir=job).params
    limits = get_board("sim").limits()
    with HostPort(
        no_counter_binary, "nocounter", limits.app_bytes, limits.sram_bytes, log_path=tmp_path / "hp.log"
    ) as hp:
        result = validate(params, ports=[hp.url], show_progress=False)
    assert result.passed  # outputs are the real engine's: the verdict does not depend on the counter
    summary = json.loads((job / "validate" / "summary.json").read_text())
    lat = summary["latency"]
    assert summary["device"]["counter_kind"] == 0
    assert lat["measured"] is False and "not measured" in lat["reason"]
    assert lat["cycles"] is None and lat["micros"] is None and lat["inferences_per_s"] is None
    html = (job / "validate" / "report.html").read_text()
    assert "Latency: not measured" in html and "latency histogram" not in html
    said = capsys.readouterr()
    assert "validate: latency not measured" in said.err + said.out

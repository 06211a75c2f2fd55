"""hkdeploy validate on the virtual EVB: results, reports, resume after a kill, sharding, thresholds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.config import load_params
from hkdeploy.errors import CheckFailed
from hkdeploy.validate import read_results, validate

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "demo.json"


def job_with_export(exported_demo: Any, tmp_path: Path) -> Path:
    job = tmp_path / "job"
    shutil.copytree(exported_demo.export_dir, job / "export")
    return job


@pytest.fixture(scope="module")
def reference(exported_demo: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """One uninterrupted run: the results every other run must reproduce."""
    job = job_with_export(exported_demo, tmp_path_factory.mktemp("ref"))
    result = validate(load_params(CONFIG, job_dir=job).params, show_progress=False)
    assert result.passed
    return read_results(job / "validate" / "results.jsonl")


def test_validate_on_the_virtual_evb(
    exported_demo: Any, reference: dict[int, dict[str, Any]], tmp_path: Path
) -> None:
    with np.load(exported_demo.export_dir / "test_data.npz") as d:
        tflm, y = d["tflm"], d["y"]
    assert sorted(reference) == list(range(len(y)))
    for i, rec in reference.items():
        assert rec["output"] == tflm[i].tolist() and rec["label"] == int(y[i]) and rec["cycles"] > 0
    job = job_with_export(exported_demo, tmp_path)
    summary = validate(load_params(CONFIG, job_dir=job).params, show_progress=False).summary
    assert summary["pairs"]["device__tflm_golden"]["exact_match"] == 1.0
    assert summary["pairs"]["device__tflm_golden"]["max_lsb"] == 0
    assert summary["device"]["board"] == "sim:apollo4p_evb" and summary["perf"]["runs"] == 20
    assert summary["latency"]["micros"]["median"] > 0 and summary["link"]["frames_per_s"] > 0
    # the virtual EVB's engine (the tflite-micro runtime) has no per-operator timer: said, not faked
    assert (
        summary["profile"]["available"] is False and "no per-operator timer" in summary["profile"]["reason"]
    )
    assert summary["layer_diff"] is None  # every frame equals the golden: nothing to localise
    html = (job / "validate" / "report.html").read_text()
    for section in (
        "Verdict",
        "Metrics",
        "Confusion matrices",
        "Per-class metrics",
        "Latency",
        "Per-layer profile",
    ):
        assert f">{section}</h2>" in html
    suite = ET.parse(job / "validate" / "junit.xml").getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    assert {c.get("name") for c in suite.iter("testcase")} == set(summary["checks"])


def test_resume_after_kill(exported_demo: Any, reference: dict[int, dict[str, Any]], tmp_path: Path) -> None:
    job = job_with_export(exported_demo, tmp_path)
    results = job / "validate" / "results.jsonl"
    exe = Path(sys.executable).parent / "hkdeploy"
    # paced at 115200 baud a frame takes ~0.11 s: kill the run somewhere in the middle
    proc = subprocess.Popen(
        [
            str(exe),
            "-q",
            "validate",
            "-c",
            str(CONFIG),
            "--job-dir",
            str(job),
            "--set",
            "link.pace=true",
            "--set",
            "link.baud=115200",
        ],
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and results.read_text().count("\n") >= 30:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    partial = read_results(results)
    assert 30 <= len(partial) < len(reference)
    validate(load_params(CONFIG, job_dir=job).params, resume=True, show_progress=False)
    lines = [ln for ln in results.read_text().splitlines() if ln.strip()]
    ids = [json.loads(ln)["sample"] for ln in lines]
    assert len(ids) == len(set(ids)) == len(reference)  # no sample twice, none lost
    final = read_results(results)
    for i, rec in reference.items():
        assert final[i]["output"] == rec["output"]


def _children_named(name: str) -> list[int]:
    """Live processes whose command is ``name`` (zombies excluded)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
        if comm == name and state != "Z":
            found.append(int(d.name))
    return found


def test_sigterm_is_an_interrupt_that_stops_the_virtual_evb_and_resume_completes(
    exported_demo: Any, reference: dict[int, dict[str, Any]], tmp_path: Path
) -> None:
    job = job_with_export(exported_demo, tmp_path)
    results = job / "validate" / "results.jsonl"
    exe = Path(sys.executable).parent / "hkdeploy"
    before = set(_children_named("hk_host"))
    proc = subprocess.Popen(
        [str(exe), "validate", "-c", str(CONFIG), "--job-dir", str(job),
         "--set", "link.pace=true", "--set", "link.baud=115200"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and results.read_text().count("\n") >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    time.sleep(0.5)
    assert set(_children_named("hk_host")) - before == set()  # the virtual EVB went with it
    partial = read_results(results)
    assert 10 <= len(partial) < len(reference)
    assert results.read_text().endswith("\n")  # no torn line after a clean interrupt
    validate(load_params(CONFIG, job_dir=job).params, resume=True, show_progress=False)
    assert sorted(read_results(results)) == sorted(reference)


def test_the_virtual_evb_killed_mid_run_is_a_device_error_that_says_so(
    exported_demo: Any, reference: dict[int, dict[str, Any]], tmp_path: Path
) -> None:
    job = job_with_export(exported_demo, tmp_path)
    results = job / "validate" / "results.jsonl"
    exe = Path(sys.executable).parent / "hkdeploy"
    before = set(_children_named("hk_host"))
    proc = subprocess.Popen(
        [str(exe), "validate", "-c", str(CONFIG), "--job-dir", str(job), "--set", "link.pace=true",
         "--set", "link.baud=115200", "--set", "link.packet_timeout=0.5", "--set", "link.retries=1"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and results.read_text().count("\n") >= 5:
            break
        time.sleep(0.05)
    for pid in set(_children_named("hk_host")) - before:
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "the port went away" in err and "fileno" not in err and "Hint:" in err
    assert 5 <= len(read_results(results)) < len(reference)  # what was done is kept for --resume


def test_two_virtual_boards_shard_one_run(
    exported_demo: Any, reference: dict[int, dict[str, Any]], tmp_path: Path
) -> None:
    job = job_with_export(exported_demo, tmp_path)
    validate(load_params(CONFIG, job_dir=job).params, sim_boards=2, show_progress=False)
    final = read_results(job / "validate" / "results.jsonl")
    assert len({rec["device"] for rec in final.values()}) == 2
    assert sorted(final) == sorted(reference)
    assert all(final[i]["output"] == reference[i]["output"] for i in reference)


def test_threshold_failure_writes_reports_then_fails(exported_demo: Any, tmp_path: Path) -> None:
    job = job_with_export(exported_demo, tmp_path)
    params = load_params(CONFIG, ["test_metric_threshold=0"], job_dir=job).params
    with pytest.raises(CheckFailed):
        validate(params, show_progress=False)
    suite = ET.parse(job / "validate" / "junit.xml").getroot()
    assert suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["metric_drop"]
    assert json.loads((job / "validate" / "summary.json").read_text())["verdict"]["passed"] is False


def test_validate_without_export_is_a_usage_error(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "hkdeploy"
    proc = subprocess.run(
        [str(exe), "validate", "-c", str(CONFIG), "--job-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "no export in" in proc.stderr and "hkdeploy export" in proc.stderr


def test_virtual_evb_returns_every_operators_output_as_the_host_interpreter(
    exported_demo: Any, tmp_path: Path
) -> None:
    """TENSOR on the virtual EVB (a second runtime interpreter that keeps every tensor, in the host
    port's process) against the host's preserve-all interpreter: every operator, chunked at 64 B."""
    from hkdeploy.contracts import load_export, load_test_data
    from hkdeploy.link import protocol as p
    from hkdeploy.platforms import connect, open_devices, target_board
    from hkdeploy.validate.layers import host_op_outputs

    job = job_with_export(exported_demo, tmp_path)
    params = load_params(CONFIG, job_dir=job).params
    export, data = load_export(params.export_dir), load_test_data(params.export_dir)
    frame = data.input_raw[3]
    host = host_op_outputs(params.export_dir / "model.tflite", export.arena.host, frame)
    layers = export.model.layers  # type: ignore[attr-defined]
    with open_devices(params, target_board(params), [], 1, tmp_path) as urls, connect(params, urls[0]) as dev:
        info = dev.hello(host_max_payload=p.MIN_PAYLOAD)
        assert info.op_count == len(layers) and dev.features() == p.Feature.TENSOR
        dev.set_input(frame.tobytes())
        for k in range(info.op_count):
            t = dev.tensor(k)
            assert t.tensor_index in host, k
            assert np.array_equal(np.frombuffer(t.data, host[t.tensor_index].dtype), host[t.tensor_index]), k
        assert dev.run(frame.tobytes()).output == data.tflm[3].tobytes()

"""validate over labgrid places on a real coordinator + exporter (127.0.0.1; see conftest.py)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _job(exported_demo: Any, tmp_path: Path, name: str) -> Path:
    job = tmp_path / name
    shutil.copytree(exported_demo.export_dir, job / "export")
    return job


def _hkdeploy(
    job: Path, farm: Any, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from hkdeploy.cli import main; sys.exit(main())",
        "-c",
        str(REPO / "configs" / "demo.json"),
        "--job-dir",
        str(job),
        "--set",
        "board.name=apollo4p_evb",
        "--set",
        "backend=evb",
        *args,
    ]
    return subprocess.run(
        cmd,
        env={**farm.env, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _results(job: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (job / "validate" / "results.jsonl").read_text().splitlines()]


def _by_sample(rows: list[dict[str, Any]]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for r in rows:
        assert r["sample"] not in out, f"sample {r['sample']} twice"
        out[r["sample"]] = r["output"]
    return out


def test_validate_over_two_places_matches_a_local_run(farm: Any, exported_demo: Any, tmp_path: Path) -> None:
    local = _job(exported_demo, tmp_path, "local")
    run = _hkdeploy(local, farm, "validate", "--port", farm.ptys["evb-a"])
    assert run.returncode == 0, run.stdout + run.stderr
    lab = _job(exported_demo, tmp_path, "lab")
    run = _hkdeploy(lab, farm, "validate", "--places", "board=sim-evb")
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout + run.stderr
    assert "acquired hk-a" in out and "acquired hk-b" in out and "hk-c" not in out
    rows = _results(lab)
    devices = {r["device"] for r in rows}
    assert len(devices) == 2 and all(d.startswith("rfc2217://127.0.0.1:") for d in devices)
    assert _by_sample(rows) == _by_sample(_results(local))  # every sample once, identical outputs
    assert len(rows) == 200
    places = farm.places()
    assert places["hk-a"].acquired is None and places["hk-b"].acquired is None  # released


def test_a_place_held_by_another_user_is_refused(farm: Any, exported_demo: Any, tmp_path: Path) -> None:
    farm.client("-p", "hk-b", "acquire")
    try:
        job = _job(exported_demo, tmp_path, "held")
        run = _hkdeploy(job, farm, "validate", "--place", "hk-a", "--place", "hk-b")
        assert run.returncode == 3, run.stdout + run.stderr
        assert "place hk-b is held by labpc/alice" in run.stdout + run.stderr
        places = farm.places()
        assert places["hk-b"].acquired == "labpc/alice"  # someone else's lock is left alone
        assert places["hk-a"].acquired is None
    finally:
        farm.client("-p", "hk-b", "release")


def test_unknown_place_and_silent_coordinator(farm: Any, exported_demo: Any, tmp_path: Path) -> None:
    job = _job(exported_demo, tmp_path, "unknown")
    run = _hkdeploy(job, farm, "validate", "--place", "nope")
    assert run.returncode == 2 and "no labgrid place 'nope'" in run.stdout + run.stderr
    # a port where nothing answers: exit 3 with a hint, within the bounded wait
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    run = _hkdeploy(
        job,
        farm,
        "--set",
        "lab.connect_timeout=2",
        "validate",
        "--place",
        "hk-a",
        env={"LG_COORDINATOR": dead},
    )
    assert run.returncode == 3, run.stdout + run.stderr
    assert f"labgrid coordinator at {dead}" in run.stdout + run.stderr and "Hint:" in run.stdout + run.stderr
    assert time.monotonic() - start < 30


def test_sigterm_releases_the_places(farm: Any, exported_demo: Any, tmp_path: Path) -> None:
    job = _job(exported_demo, tmp_path, "term")
    proc = _start(job, farm, "validate", "--place", "hk-c")
    try:
        _wait_rows(job, 5, proc)
        assert farm.places()["hk-c"].acquired == "testhost/tester"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "released hk-c" in out and farm.places()["hk-c"].acquired is None


def test_coordinator_killed_mid_run_exits_3_and_resume_completes(
    farm: Any, exported_demo: Any, tmp_path: Path
) -> None:
    job = _job(exported_demo, tmp_path, "killed")
    proc = _start(job, farm, "validate", "--place", "hk-c")
    try:
        _wait_rows(job, 10, proc)
        farm.coordinator.stop(signal.SIGKILL)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, out
    assert "lost the labgrid coordinator" in out and "--resume" in out
    partial = _results(job)
    assert 10 <= len(partial) < 200
    # the lab comes back (a restarted coordinator starts with every place free; the exporter rejoins)
    if farm.exporter.alive():
        farm.exporter.stop()
    farm.start_coordinator()
    farm.start_exporter()
    run = _hkdeploy(job, farm, "validate", "--place", "hk-c", "--resume")
    assert run.returncode == 0, run.stdout + run.stderr
    rows = _results(job)
    assert sorted(_by_sample(rows)) == list(range(200))  # every sample exactly once
    assert farm.places()["hk-c"].acquired is None


def _start(job: Path, farm: Any, *args: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from hkdeploy.cli import main; sys.exit(main())",
        "-c",
        str(REPO / "configs" / "demo.json"),
        "--job-dir",
        str(job),
        "--set",
        "board.name=apollo4p_evb",
        "--set",
        "backend=evb",
        *args,
    ]
    return subprocess.Popen(
        cmd,
        env={**farm.env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_rows(job: Path, n: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    path = job / "validate" / "results.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"validate ended early ({proc.returncode}): {proc.stdout.read() if proc.stdout else ''}"
            )
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} results after {timeout} s")


def test_flashing_a_place_without_a_probe_goes_through_labgrid_and_fails_clearly(
    farm: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """labgrid's own RemotePlace + FlashScriptDriver are reached for the acquired place; with no
    USBFlashableDevice exported for it, the error names the place and what to add."""
    import pytest

    from hkdeploy.config import load_params
    from hkdeploy.errors import DeviceError
    from hkdeploy.lab.flash import _run_on_exporter
    from hkdeploy.lab.places import lab_ports

    for k in ("LG_COORDINATOR", "LG_USERNAME", "LG_HOSTNAME"):
        monkeypatch.setenv(k, farm.env[k])
    params = load_params(REPO / "configs" / "demo.json", job_dir=tmp_path).params
    script = tmp_path / "flash.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    with lab_ports(params, ["hk-a"], {}) as lab, pytest.raises(DeviceError) as err:
        _run_on_exporter("hk-a", script, lab.session.address)
    assert "flashing place hk-a through labgrid failed" in err.value.message
    assert "USBFlashableDevice" in (err.value.hint or "")
    assert farm.places()["hk-a"].acquired is None

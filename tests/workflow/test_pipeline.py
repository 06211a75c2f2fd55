"""hkdeploy run and demo end to end on the virtual EVB (and demo on the host TFLM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hkdeploy.cli import main
from hkdeploy.config import load_params
from hkdeploy.demo import demo, pick_record

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "demo.json"


@pytest.mark.slow  # exports with TensorFlow and streams to the virtual EVB
def test_run_whole_chain_on_the_virtual_evb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job"
    assert main(["run", "-c", str(CONFIG), "--job-dir", str(job)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    for stage in ("run: export", "run: build", "run: validate", "run: done"):
        assert stage in err
    assert "run: flash" not in err  # nothing to flash on the virtual EVB
    manifest = json.loads((job / "firmware" / "sim" / "build_manifest.json").read_text())
    report = json.loads((job / "export" / "export_report.json").read_text())
    summary = json.loads((job / "validate" / "summary.json").read_text())
    assert manifest["model_sha256"] == report["model"]["sha256"]
    assert summary["verdict"]["passed"] and summary["frames"] == 200
    assert summary["pairs"]["device__tflm_golden"]["exact_match"] == 1.0
    assert json.loads((job / "config.json").read_text())["command"] == "run"


def test_run_stops_at_the_failing_stage_with_its_exit_code(
    job: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "-c",
            str(CONFIG),
            "--job-dir",
            str(job),
            "--skip",
            "export",
            "--set",
            "test_metric_threshold=0.0",
        ]
    )
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "validate failed:" in err  # the demo loses 0.01 accuracy float -> int8
    assert (job / "validate" / "report.html").is_file()


def test_run_for_a_board_without_sdk_stops_at_build(job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["run", "-c", str(CONFIG), "--job-dir", str(job), "--skip", "export", "--board", "apollo4p_evb",
         "--set", "firmware.neuralspot_root=/nonexistent/neuralSPOT"]
    )  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert code == 4 and "build failed: /nonexistent/neuralSPOT is not a neuralSPOT tree" in err
    assert not (job / "validate").exists()


def test_demo_frames_are_consecutive_frames_of_one_record(job: Path) -> None:
    params = load_params(CONFIG, job_dir=job).params
    x, y, record = pick_record(params)
    again = pick_record(params)
    assert x.shape == (params.demo_size, params.frame_size, 1) and record == again[2]
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])


@pytest.mark.parametrize("backend", ["pc", "sim"])
def test_demo_on_host_tflm_and_virtual_evb(job: Path, backend: str) -> None:
    params = load_params(CONFIG, job_dir=job).params
    result = demo(params, backend)
    assert len(result.frames) == params.demo_size
    # the outputs are TFLM's: the same frame through the export's golden gives the same class
    summary = json.loads((job / "demo" / "demo.json").read_text())
    assert summary["backend"] == backend and summary["accuracy"] == result.accuracy
    assert all(f["micros"] > 0 and 0 < f["confidence"] <= 1 for f in summary["frames"])
    html = (job / "demo" / "demo.html").read_text()
    for section in ("Signal and predictions", "Summary", "Frames"):
        assert f">{section}</h2>" in html
    assert (job / "demo" / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_backends_agree(job: Path) -> None:
    params = load_params(CONFIG, job_dir=job).params
    pc = demo(params, "pc").frames
    sim = demo(params, "sim").frames
    assert [f["probabilities"] for f in pc] == [f["probabilities"] for f in sim]


def test_run_for_a_board_builds_flashes_and_validates(
    job: Path, fake_sdk: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The board path of `run` with test doubles: the fake neuralSPOT make and a fake JLinkExe, and a
    virtual EVB on --port standing in for the flashed board (same model, so HELLO's hash matches)."""
    from hkdeploy.platforms.host import build_virtual_evb
    from hkdeploy.platforms.host_process import HostPort

    tools = fake_sdk["tools"]
    (tools / "JLinkExe").write_text(
        f'#!/bin/sh\necho "$@" > {tools}/JLinkExe.args\necho "Connecting to J-Link via USB...O.K."\n'
    )
    (tools / "JLinkExe").chmod(0o755)
    stand_in = build_virtual_evb(job / "export", tmp_path / "stand_in")
    with HostPort(stand_in, "apollo4p_evb") as hp:
        code = main(
            ["run", "-c", str(CONFIG), "--job-dir", str(job), "--skip", "export", "--board", "apollo4p_evb",
             "--set", "backend=evb", "--set", f"firmware.neuralspot_root={fake_sdk['sdk']}", "--port", hp.url]
        )  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err
    for stage in ("run: build", "run: flash", "run: validate"):
        assert stage in err
    jlink_args = (tools / "JLinkExe.args").read_text().split()
    assert jlink_args[jlink_args.index("-device") + 1] == "AMAP42KK-KBR"
    assert "hkdeploy_fw.bin" in (job / "firmware" / "apollo4p_evb" / "flash.jlink").read_text()
    summary = json.loads((job / "validate" / "summary.json").read_text())
    assert summary["verdict"]["passed"] and summary["device"]["board"] == "apollo4p_evb"

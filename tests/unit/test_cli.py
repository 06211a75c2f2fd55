"""The CLI: exit codes, one-line errors with hints, tracebacks only with -vv, config commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hkdeploy.cli import main

REPO = Path(__file__).resolve().parents[2]
HK_CONFIG = REPO / "tests" / "data" / "heartkit_rhythm.json"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``hkdeploy`` script as a user would."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"}
    exe = Path(sys.executable).parent / "hkdeploy"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and "0.1.0" in r.stdout


def test_config_check_demo() -> None:
    r = run("config", "check", str(REPO / "configs" / "demo.json"))
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stderr


def test_config_check_heartkit_reports_ignored_once() -> None:
    r = run("config", "check", str(HK_CONFIG))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("ignored keys (HeartKit training-only") == 1
    assert "epochs" in r.stderr and "lr_rate" in r.stderr


def test_config_error_is_one_line_with_hint_exit_2(tmp_path: Path) -> None:
    # not a HeartKit config (no HeartKit-only key), so `mode` is a typo, not a HeartKit quirk
    data = {"name": "mine", "quantization": {"format": "int8", "mode": "FP32"}}
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(data))
    r = run("config", "check", str(cfg))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("error:") and "quantization.mode" in lines[0] and "format" in lines[0]
    assert lines[1].startswith("Hint:")
    assert len(lines) == 2 and "Traceback" not in r.stderr


def test_traceback_only_with_vv(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text('{"frame_size": -3}')
    quiet = run("-c", str(cfg), "config", "show")
    loud = run("-vv", "-c", str(cfg), "config", "show")
    assert quiet.returncode == loud.returncode == 2
    assert "frame_size must be > 0, got -3" in quiet.stderr and "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr


def test_usage_error_exit_2() -> None:
    assert run("config", "nope").returncode == 2
    assert run("--set", "bad", "config", "show").returncode == 2


def test_config_show_sources_and_subcommand_options(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text('{"frame_size": 500}')
    # options may come before or after the subcommand
    r = run("config", "show", "-c", str(cfg), "--set", "test_size=9", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["frame_size"] == 500 and data["test_size"] == 9
    r = run("-c", str(cfg), "config", "show", "--set", "test_size=9")
    rows = {
        ln.split("│")[1].strip(): ln.split("│")[3].strip()
        for ln in r.stdout.splitlines()
        if ln.count("│") >= 4
    }
    assert (
        rows["frame_size"] == "file" and rows["test_size"] == "--set" and rows["sampling_rate"] == "default"
    )


def test_config_schema_is_json() -> None:
    r = run("config", "schema")
    schema = json.loads(r.stdout)
    assert "quantization" in schema["properties"] and "QuantizationParams" in schema["$defs"]


def test_interrupt_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    from hkdeploy.cli import config_cmd

    def boom(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(config_cmd, "load_params", boom)
    assert main(["config", "check", str(HK_CONFIG)]) == 130


def test_internal_error_exit_70(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from hkdeploy.cli import config_cmd

    def bug(*a: object, **k: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(config_cmd, "load_params", bug)
    assert main(["config", "check", str(HK_CONFIG)]) == 70


@pytest.mark.parametrize(
    ("exc_name", "code"), [("CheckFailed", 1), ("UserError", 2), ("DeviceError", 3), ("ToolError", 4)]
)
def test_error_classes_map_to_documented_exit_codes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc_name: str, code: int
) -> None:
    from hkdeploy import errors
    from hkdeploy.cli import config_cmd

    def fail(*a: object, **k: object) -> None:
        raise getattr(errors, exc_name)("it went wrong", hint="try this")

    monkeypatch.setattr(config_cmd, "load_params", fail)
    assert main(["config", "check", str(HK_CONFIG)]) == code
    err = capsys.readouterr().err
    assert "error: it went wrong" in err and "Hint: try this" in err


def test_job_config_records_versions(tmp_path: Path) -> None:
    from hkdeploy.config import load_params, write_job_config

    loaded = load_params(HK_CONFIG, job_dir=tmp_path / "job")
    path = write_job_config(loaded, "export")
    record = json.loads(path.read_text())
    assert record["command"] == "export"
    assert record["config"]["name"] == "arr-2-eff-sm"
    assert record["versions"]["hkdeploy"] == "0.1.0" and record["versions"]["keras"]
    assert "epochs" in record["ignored_keys"]
    assert path.read_bytes().endswith(b"\n") and b"\r\n" not in path.read_bytes()

"""The export's process structure: one TensorFlow process (the worker), none in the parent; SIGKILL and
SIGTERM leave no process and nothing half-written; stale staging folders go with the next export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.export.conftest import tiny_config

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux only)")

WORKER = "hkdeploy.export.worker"


def _procs() -> dict[int, tuple[int, int, str, str]]:
    """pid -> (ppid, session id, state, cmdline) of every process we can see."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = (int(fields[1]), int(fields[3]), fields[0], cmd)
    return out


def _alive_in_session(sid: int) -> list[str]:
    """Processes of session ``sid`` that still run (zombies waiting for init's reaping do not count)."""
    return [f"{pid} {cmd}" for pid, (_, s, state, cmd) in _procs().items() if s == sid and state != "Z"]


def _start_export(cfg_path: Path) -> subprocess.Popen[bytes]:
    code = "import sys; from hkdeploy.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "-q", "export", "-c", str(cfg_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own session: children reparented to init keep the session id
        env={**os.environ, "NO_COLOR": "1"},
    )


def _wait_for_worker(proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the export ended early ({proc.returncode})"
        for pid, (ppid, _, _, cmd) in _procs().items():
            if ppid == proc.pid and WORKER in cmd:
                return pid
        time.sleep(0.05)
    raise AssertionError("no worker process appeared")


def _wait_gone(sid: int, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    left = _alive_in_session(sid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _alive_in_session(sid)
    return left


def _config(tmp_path: Path, tiny_data: Path, conv_model: Path) -> tuple[Path, Path]:
    job = tmp_path / "job"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(tiny_config(tiny_data, conv_model, job)))
    return cfg, job / "export"


def test_sigkill_leaves_no_process_and_the_next_export_removes_the_stage(
    tmp_path: Path, tiny_data: Path, conv_model: Path
) -> None:
    cfg, out = _config(tmp_path, tiny_data, conv_model)
    proc = _start_export(cfg)
    try:
        worker = _wait_for_worker(proc)
        time.sleep(1.0)  # TensorFlow is starting in the worker
        assert _procs()[worker][0] == proc.pid
        stages = list(out.glob(".export-*"))
        assert len(stages) == 1, stages
        proc.kill()
        proc.wait(timeout=10)
        # at once: a worker left alone would go on for seconds (TensorFlow start-up, model load)
        left = _wait_gone(proc.pid, timeout=2.0)
        assert not left, f"processes outlived the SIGKILLed export: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert stages[0].exists()  # nobody could clean up after SIGKILL ...

    from hkdeploy.config import load_params
    from hkdeploy.export import export

    result = export(load_params(cfg).params, show_progress=False)  # ... the next export does
    assert not stages[0].exists()
    assert not list(out.glob(".export-*"))
    assert (result.export_dir / "model.tflite").stat().st_size > 0


def test_sigterm_exits_130_with_nothing_half_written(
    tmp_path: Path, tiny_data: Path, conv_model: Path
) -> None:
    cfg, out = _config(tmp_path, tiny_data, conv_model)
    proc = _start_export(cfg)
    try:
        _wait_for_worker(proc)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130, err.decode()
    assert "interrupted" in err.decode()
    assert not _wait_gone(proc.pid), "a child outlived the SIGTERMed export"
    assert sorted(p.name for p in out.iterdir()) == []  # no artifact, no staging folder


def test_the_export_parent_never_imports_tensorflow(
    tmp_path: Path, tiny_data: Path, conv_model: Path
) -> None:
    cfg, out = _config(tmp_path, tiny_data, conv_model)
    code = (
        "import sys\n"
        "from hkdeploy.config import load_params\n"
        "from hkdeploy.export import export\n"
        "export(load_params(sys.argv[1]).params, show_progress=False)\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ""
    assert (out / "export_report.json").exists()


def test_stale_stages_are_those_of_dead_processes(tmp_path: Path) -> None:
    from hkdeploy.export.api import remove_stale_stages

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait(timeout=30)
        (tmp_path / f".export-{dead.pid}-abc").mkdir()
        (tmp_path / f".export-{dead.pid}-abc" / "model.tflite").write_bytes(b"x")
        (tmp_path / f".export-{sleeper.pid}-def").mkdir()
        (tmp_path / ".export-old_format").mkdir()
        (tmp_path / "model.tflite").write_bytes(b"kept")
        removed = remove_stale_stages(tmp_path)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)
    assert sorted(p.name for p in removed) == sorted([f".export-{dead.pid}-abc", ".export-old_format"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".export-{sleeper.pid}-def", "model.tflite"]


def test_a_converter_crash_in_the_worker_is_a_user_error(tmp_path: Path, tiny_data: Path) -> None:
    import keras

    from hkdeploy.config import load_params
    from hkdeploy.errors import UserError
    from hkdeploy.export import export

    inp = keras.Input((64, 1))
    keras.Model(inp, keras.layers.Dense(4)(keras.layers.GRU(8)(inp))).save(tmp_path / "gru.keras")
    job = tmp_path / "job"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(tiny_config(tiny_data, tmp_path / "gru.keras", job)))
    try:
        export(load_params(cfg).params, show_progress=False)
    except UserError as err:
        message, hint = err.message, err.hint
    else:
        pytest.skip("this TensorFlow's converter converts a GRU int8 model")
    if "crashed" not in message:
        pytest.skip(f"this TensorFlow's converter no longer crashes on a GRU int8 model: {message}")
    assert "recurrent layers (GRU)" in message and "\n" not in message
    assert hint and "GRU/LSTM" in hint
    assert not list((job / "export").glob(".export-*"))

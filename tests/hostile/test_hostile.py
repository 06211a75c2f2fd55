"""Hostile input: every bad config, model file, dataset, file system, signal and misbehaving device
gets the right exit code, one error line with a hint, loses nothing and leaves no process behind.

The fake devices on a pty here are test doubles (a silent port, an echoing port, a port spewing
random bytes, a device answering HELLO with impossible values); the export they are validated against
is a hand-written stand-in (``fake_export``), so these tests need no TensorFlow.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import threading
import time
import tty
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.cli import main
from hkdeploy.datasets import load_split
from hkdeploy.link import protocol as p
from hkdeploy.link.framing import Decoder, Packet, encode_packet
from tests.doubles.fake_export import write_fake_export

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.json"
FAST_LINK = [
    "--set", "link.connect_timeout=0.6", "--set", "link.packet_timeout=0.3", "--set", "link.retries=1",
    "--set", "link.command_timeout=2",
]  # fmt: skip


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().err


def assert_one_line_with_hint(err: str) -> None:
    """The error is one `error:` line followed by one `Hint:` line; no traceback."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [i for i, ln in enumerate(lines) if ln.startswith("error:")]
    assert len(errors) == 1, err
    i = errors[0]
    assert i + 1 < len(lines) and lines[i + 1].startswith("Hint: "), err
    assert "Traceback" not in err, err
    assert i + 2 == len(lines), f"more after the hint: {err}"


def no_tmp_files(root: Path) -> list[Path]:
    return [f for f in root.rglob("*") if f.name.endswith(".tmp") or f.name.endswith(".staging")]


# --- config ---------------------------------------------------------------------------------------


def test_yaml_syntax_error_is_one_line_with_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("name: x\ndatasets:\n  - name: npz\n   params: {path: a.npz}\n")
    code, err = run_cli(capsys, "config", "check", str(cfg))
    assert code == 2 and "not valid YAML" in err and "line 4" in err
    assert_one_line_with_hint(err)


def test_top_level_json_list_has_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "list.json"
    cfg.write_text('[{"name": "x"}]')
    code, err = run_cli(capsys, "config", "check", str(cfg))
    assert code == 2 and "must hold a mapping" in err and "got a list" in err
    assert_one_line_with_hint(err)


def test_binary_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "model.yaml"
    cfg.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    code, err = run_cli(capsys, "config", "check", str(cfg))
    assert code == 2 and "not a text file" in err
    assert_one_line_with_hint(err)


def test_board_file_yaml_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    board = tmp_path / "board.yaml"
    board.write_text("name: b\nsoc: [unclosed\n")
    code, err = run_cli(
        capsys, "doctor", "-c", str(DEMO), "--job-dir", str(tmp_path / "j"), "--board", str(board)
    )
    assert code == 2 and "board file" in err and "not valid YAML" in err
    assert_one_line_with_hint(err)


def test_a_typo_still_fails_with_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"name": "x", "frame_sise": 100}))
    code, err = run_cli(capsys, "config", "check", str(cfg))
    assert code == 2 and "did you mean 'frame_size'" in err


def test_relative_dataset_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hkdeploy.config import load_params

    folder = tmp_path / "project"
    folder.mkdir()
    np.savez(folder / "data.npz", x=np.zeros((4, 100), np.float32), y=np.zeros(4, np.int64))
    cfg = folder / "c.json"
    cfg.write_text(json.dumps({"name": "x", "datasets": [{"name": "npz", "params": {"path": "data.npz"}}]}))
    monkeypatch.chdir(tmp_path)  # elsewhere: the path must still mean project/data.npz
    params = load_params(cfg).params
    assert params.datasets[0].params["path"] == str((folder / "data.npz").resolve())


# --- model files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "truncated", "no_config"])
def test_a_bad_keras_file_says_what_it_is(tmp_path: Path, kind: str) -> None:
    from hkdeploy.errors import UserError
    from hkdeploy.export.load import check_model_file

    bad = tmp_path / "model.keras"
    if kind == "text":
        bad.write_text("this is not a model\n")
    elif kind == "truncated":
        data = (REPO / "examples" / "demo_model.keras").read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("metadata.json", "{}")
    with pytest.raises(UserError) as err:
        check_model_file(bad)
    assert str(bad) in err.value.message and "not found" not in err.value.message.lower()
    assert err.value.hint
    check_model_file(REPO / "examples" / "demo_model.keras")  # the real one passes


def test_an_h5_that_is_not_hdf5(tmp_path: Path) -> None:
    from hkdeploy.errors import UserError
    from hkdeploy.export.load import check_model_file

    bad = tmp_path / "model.h5"
    bad.write_bytes(b"PK\x03\x04 not hdf5")
    with pytest.raises(UserError, match="not an HDF5 file"):
        check_model_file(bad)


# --- datasets ---------------------------------------------------------------------------------------


def _npz_params(tmp_path: Path, x: np.ndarray, y: np.ndarray, **extra: Any) -> Any:
    from hkdeploy.config import load_params

    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = {
        "name": "hostile",
        "frame_size": x.shape[1] if x.ndim > 1 else 1,
        "num_classes": 2,
        "datasets": [
            {"name": "npz", "params": {"path": str(tmp_path / "d.npz"), "test_path": str(tmp_path / "d.npz")}}
        ],
        **extra,
    }
    return load_params(data=data, job_dir=tmp_path / "job").params


def test_nan_and_inf_in_a_dataset_name_the_array_count_and_first_frame(tmp_path: Path) -> None:
    from hkdeploy.errors import UserError

    x = np.zeros((10, 50), np.float32)
    x[5, 3] = np.nan
    x[7, 0] = np.inf
    x[7, 1] = -np.inf
    with pytest.raises(UserError) as err:
        load_split(_npz_params(tmp_path, x, np.zeros(10, np.int64)))
    msg = err.value.message
    assert "x holds 3 non-finite values" in msg and "first in frame 5" in msg and "QAT" not in msg


def test_negative_labels_are_refused(tmp_path: Path) -> None:
    from hkdeploy.errors import UserError

    y = np.array([0, 1, 0, -1, 1, -3], np.int64)
    with pytest.raises(UserError) as err:
        load_split(_npz_params(tmp_path, np.zeros((6, 20), np.float32), y))
    assert "y holds 2 negative labels" in err.value.message and "first in frame 3" in err.value.message


def test_empty_dataset(tmp_path: Path) -> None:
    from hkdeploy.errors import UserError

    with pytest.raises(UserError, match="x is empty"):
        load_split(_npz_params(tmp_path, np.zeros((0, 20), np.float32), np.zeros(0, np.int64)))


class ExplodingDataset:  # a user's dataset class whose constructor raises (test double)
    def __init__(self, **params: Any) -> None:
        raise RuntimeError("cannot reach the dataset server")


def test_a_dataset_that_raises_is_the_users_error_not_ours(tmp_path: Path) -> None:
    from hkdeploy.config import load_params
    from hkdeploy.datasets.base import Dataset
    from hkdeploy.errors import UserError

    class Boom(Dataset):
        def load(self, split: Any, **kw: Any) -> Any:
            raise RuntimeError("cannot reach the dataset server")

    sys.modules[__name__].Boom = Boom  # type: ignore[attr-defined]
    params = load_params(
        data={"name": "x", "datasets": [{"name": f"{__name__}:Boom", "params": {}}]}, job_dir=tmp_path
    ).params
    with pytest.raises(UserError) as err:
        load_split(params)
    assert "failed to load the test split: RuntimeError: cannot reach the dataset server" in err.value.message


def test_test_size_larger_than_the_data_warns_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = _npz_params(tmp_path, np.zeros((6, 20), np.float32), np.zeros(6, np.int64))
    data = load_split(params, "test", size=50)
    err = capsys.readouterr().err
    assert len(data) == 6 and err.count("test_size 50 is larger than the 6 test frames") == 1


# --- file system --------------------------------------------------------------------------------------


def test_job_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "job"
    blocker.write_text("a file where the job folder should be")
    code, err = run_cli(capsys, "build", "-c", str(DEMO), "--job-dir", str(blocker / "sub"))
    assert code == 2 and "in the way" in err and str(blocker) in err
    assert_one_line_with_hint(err)
    assert blocker.read_text().startswith("a file")


def _tmpfs(path: Path, size: str, *opts: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *opts]), "tmpfs", str(path)],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"needs root and mount to make a small tmpfs: {r.stderr.strip()}")


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for m in made:
        subprocess.run(["umount", "-l", str(m)], capture_output=True, timeout=10, check=False)


def test_read_only_job_dir(tmp_path: Path, mounts: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    _tmpfs(ro, "1m", "ro")
    mounts.append(ro)
    code, err = run_cli(capsys, "build", "-c", str(DEMO), "--job-dir", str(ro / "job"))
    assert code == 2 and "Read-only" in err
    assert_one_line_with_hint(err)


def test_a_full_disk_names_the_file_and_the_free_space_and_keeps_nothing_half_written(
    fake_export: Path, tmp_path: Path, mounts: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    small = tmp_path / "small"
    size = sum(f.stat().st_size for f in fake_export.rglob("*") if f.is_file())
    _tmpfs(small, str(size + 48 * 1024))
    mounts.append(small)
    job = small / "job"
    shutil.copytree(fake_export, job / "export")
    code, err = run_cli(capsys, "build", "-c", str(DEMO), "--job-dir", str(job), "--board", "sim")
    assert code == 2 and "the disk is full" in err and "B free on" in err, err
    assert_one_line_with_hint(err)
    assert no_tmp_files(job) == [] and not (job / "firmware" / "sim" / "project").exists()


def test_damaged_artifacts_are_named(
    fake_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job"
    shutil.copytree(fake_export, job / "export")
    (job / "export" / "export_report.json").write_text('{"schema": "hkdeploy.export_report/1", "name"')
    code, err = run_cli(capsys, "validate", "-c", str(DEMO), "--job-dir", str(job), "--port", "/dev/null")
    assert code == 2 and "export_report.json is damaged" in err
    assert_one_line_with_hint(err)

    shutil.copy(fake_export / "export_report.json", job / "export" / "export_report.json")
    (job / "export" / "test_data.npz").write_bytes(b"PK\x03\x04truncated")
    code, err = run_cli(capsys, "validate", "-c", str(DEMO), "--job-dir", str(job), "--port", "/dev/null")
    assert code == 2 and "test_data.npz is damaged" in err
    assert_one_line_with_hint(err)

    out = job / "firmware" / "apollo4p_evb"
    out.mkdir(parents=True)
    (out / "build_manifest.json").write_text("[1, 2")
    code, err = run_cli(capsys, "flash", "-c", str(DEMO), "--job-dir", str(job), "--board", "apollo4p_evb")
    assert code == 2 and "build_manifest.json is damaged" in err
    assert_one_line_with_hint(err)


# --- fake devices on a pty (test doubles) -------------------------------------------------------------


class FakeDevice:
    """A pty whose far end is a misbehaving device (test double). ``behaviour`` is one of
    silent | echo | random | absurd_hello | tiny_payload."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._slave = slave
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _hello(self, seq: int, max_payload: int, input_bytes: int = 1250) -> bytes:
        tensor_in = [9, 3, 0, 1, 1250, 1, 0, 0, 0, 0.05, 0, input_bytes]
        tensor_out = [9, 2, 0, 1, 4, 0, 0, 0, 0, 1 / 256, -128, 4]
        payload = struct.pack(
            p.HelloResponse.FORMAT, p.PROTOCOL_VERSION, max_payload, 1, 0, 4096, 3000, 1000, 96_000_000,
            b"\x11" * 32, *tensor_in, *tensor_out, b"fake".ljust(24, b"\0"), b"x".ljust(24, b"\0"), 1, 12, 0,
        )  # fmt: skip
        return encode_packet(p.MsgType.HELLO, seq, payload, flags=p.Flag.RESPONSE)

    def _serve(self) -> None:
        dec = Decoder()
        rng = random.Random(7)
        while not self._stop.is_set():
            try:
                import select

                ready, _, _ = select.select([self.master], [], [], 0.05)
                if not ready:
                    if self.behaviour == "random":
                        os.write(self.master, bytes(rng.randrange(256) for _ in range(64)))
                    continue
                data = os.read(self.master, 4096)
            except OSError:
                return
            if self.behaviour == "echo":
                os.write(self.master, data)
            elif self.behaviour in ("absurd_hello", "tiny_payload"):
                for item in dec.feed(data):
                    if isinstance(item, Packet) and item.type == p.MsgType.HELLO:
                        if self.behaviour == "tiny_payload":
                            os.write(self.master, self._hello(item.seq, 4))
                        else:
                            os.write(self.master, self._hello(item.seq, 1600, input_bytes=3))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def fake_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-written stand-in export (a test double, tests/doubles/fake_export.py)."""
    return write_fake_export(tmp_path_factory.mktemp("fake_export") / "export")


@pytest.mark.parametrize(
    ("behaviour", "expect"),
    [
        ("silent", "no answer to HELLO"),
        ("echo", "port echoes"),
        ("random", "garbled answer"),
        ("tiny_payload", "max_payload 4"),
        ("absurd_hello", "input nbytes 3"),
    ],
)
def test_misbehaving_devices_are_exit_3_with_a_hint_within_a_bounded_wait(
    behaviour: str, expect: str, fake_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job"
    shutil.copytree(fake_export, job / "export")
    dev = FakeDevice(behaviour)
    try:
        start = time.monotonic()
        code, err = run_cli(
            capsys, "validate", "-c", str(DEMO), "--job-dir", str(job), "--port", dev.path, *FAST_LINK
        )
        took = time.monotonic() - start
    finally:
        dev.close()
    assert code == 3 and expect in err, err
    assert_one_line_with_hint(err)
    assert took < 15
    assert not (job / "validate" / "summary.json").exists()


# --- resume -----------------------------------------------------------------------------------------


def test_resume_refuses_results_of_another_export(
    fake_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job"
    shutil.copytree(fake_export, job / "export")
    (job / "validate").mkdir()
    old = {
        "sample": 0,
        "output": [1, 2, 3, 4],
        "cycles": 1,
        "micros": 1,
        "model_sha256": "33" * 32,
        "export": "x",
    }
    (job / "validate" / "results.jsonl").write_text(json.dumps(old) + "\n")
    code, err = run_cli(
        capsys, "validate", "-c", str(DEMO), "--job-dir", str(job), "--port", "/dev/null", "--resume"
    )
    assert code == 2 and "results of another export" in err and "drop --resume" in err
    assert_one_line_with_hint(err)
    assert json.loads((job / "validate" / "results.jsonl").read_text()) == old  # nothing lost


def test_resume_refuses_a_damaged_results_file(
    fake_export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job"
    shutil.copytree(fake_export, job / "export")
    (job / "validate").mkdir()
    (job / "validate" / "results.jsonl").write_text('{"sample": 0\n{"sample": 1}\n')
    code, err = run_cli(
        capsys, "validate", "-c", str(DEMO), "--job-dir", str(job), "--port", "/dev/null", "--resume"
    )
    assert code == 2 and "line 1 is damaged" in err
    assert_one_line_with_hint(err)

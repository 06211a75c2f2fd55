"""HeartKit configs load unchanged, never silently: quirks warned one line each, other typos still errors.

The configs below are written by hand in the style of HeartKit 1.8's ``configs/`` (one per task
family), so that together they hold every quirk those files have.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hkdeploy.config import load_params
from hkdeploy.config.heartkit import is_heartkit_config
from hkdeploy.errors import ConfigError

TRAINING = {
    "samples_per_patient": [10, 10],
    "val_samples_per_patient": [5, 5],
    "test_samples_per_patient": [5, 5],
    "val_patients": 0.2,
    "val_size": 2000,
    "batch_size": 256,
    "buffer_size": 50000,
    "epochs": 150,
    "steps_per_epoch": 50,
    "lr_rate": 1e-3,
    "lr_cycles": 1,
    "architecture": {"name": "tcn", "params": {"input_kernel": [1, 3], "blocks": [{"depth": 1}]}},
}

# Rhythm, large: mode FP32 next to no format (HeartKit exports INT8), a disabled augmentations copy.
RHYTHM = {
    "name": "arr-4-x",
    "project": "hk-rhythm-4",
    "job_dir": "./results/arr-4-x",
    "num_classes": 4,
    "class_map": {"0": 0, "1": 1, "7": 2, "8": 2, "2": 3, "5": 3},
    "class_names": ["SR", "SB", "AFIB", "GSVT"],
    "sampling_rate": 100,
    "frame_size": 800,
    "datasets": [{"name": "lsad", "params": {"path": "./datasets/lsad"}}],
    "val_file": "val.tfds",
    "test_file": "val.tfds",
    "val_metric": "loss",
    "class_weights": "balanced",
    "test_metric": "f1",
    "test_metric_threshold": 0.02,
    "quantization": {
        "qat": False,
        "mode": "FP32",
        "io_type": "int8",
        "conversion": "CONCRETE",
        "debug": False,
    },
    "preprocesses": [{"name": "layer_norm", "params": {"epsilon": 0.01, "name": "znorm"}}],
    "augmentations-dis": [{"name": "baseline_wander", "params": {"amplitude": [0.0, 0.5]}}],
    "model_file": "model.keras",
    "use_logits": False,
    **TRAINING,
}

# Denoise PPG: signal_type, flatten, no num_classes/class_map, nested params inside a dataset's params.
DENOISE = {
    "name": "den-ppg-x",
    "job_dir": "./results/den-ppg-x",
    "signal_type": "PPG",
    "flatten": True,
    "sampling_rate": 100,
    "frame_size": 256,
    "datasets": [
        {
            "name": "ppg-synthetic",
            "params": {"num_pts": 400, "params": {"duration": 20, "heart_rate": [40, 160]}},
        }
    ],
    "val_metric": "loss",
    "quantization": {"format": "INT16X8", "io_type": "int16", "mode": "INT16X8", "conversion": "CONCRETE"},
    "augmentations": [],
    "model_file": "model.keras",
    "use_logits": True,
    **TRAINING,
}

# Foundation: temperature (SimCLR training), 128 outputs.
FOUNDATION = {
    "name": "fnd-x",
    "job_dir": "./results/fnd-x",
    "num_classes": 128,
    "temperature": 1.0,
    "frame_size": 800,
    "datasets": [{"name": "ptbxl", "params": {"path": "./datasets/ptbxl", "leads": [0, 1, 2]}}],
    "quantization": {"format": "INT8", "mode": "INT8", "io_type": "float32", "conversion": "CONCRETE"},
    **TRAINING,
}

# Segmentation: HeartKit's 0.98 threshold default copied in, mode INT8 next to format INT8.
SEGMENTATION = {
    "name": "seg-4-x",
    "job_dir": "./results/seg-4-x",
    "num_classes": 4,
    "class_map": {"0": 0, "1": 1, "2": 2, "3": 3, "4": 0, "5": 0},
    "class_names": ["NONE", "P-WAVE", "QRS", "T-WAVE"],
    "frame_size": 256,
    "datasets": [{"name": "ludb", "params": {"path": "./datasets/ludb"}}],
    "test_metric": "f1",
    "test_metric_threshold": 0.98,
    "quantization": {"format": "INT8", "mode": "INT8", "conversion": "CONCRETE"},
    **TRAINING,
}

# Download: nothing but datasets, one of which has `path` where `params` belongs.
DOWNLOAD = {
    "datasets": [
        {"name": "icentia11k", "params": {"path": "./datasets/icentia11k"}},
        {"name": "ludb", "path": {"path": "./datasets/ludb"}},
    ]
}


def write(tmp_path: Path, data: dict[str, Any], name: str = "cfg.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2))
    return path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "400", "TERM": "dumb"}
    exe = Path(sys.executable).parent / "hkdeploy"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def test_recognition_rule() -> None:
    for cfg in (RHYTHM, DENOISE, FOUNDATION, SEGMENTATION, DOWNLOAD):
        assert is_heartkit_config(cfg)
    assert not is_heartkit_config({"name": "x", "datasets": [{"name": "synthetic", "params": {}}]})
    assert not is_heartkit_config({"quantization": {"mode": "FP32"}})
    assert is_heartkit_config({"augmentations-dis": []})


def test_rhythm_mode_fp32_exports_int8_as_heartkit_does_and_says_so(tmp_path: Path) -> None:
    loaded = load_params(write(tmp_path, RHYTHM))
    assert loaded.heartkit
    assert loaded.params.quantization.format == "int8" and loaded.params.quantization.enabled
    assert len(loaded.warnings) == 2
    mode, dis = loaded.warnings
    assert "quantization.mode (FP32)" in mode and "write quantization.format: FP32" in mode
    assert "augmentations-dis" in dis and "ignores it" in dis
    # HeartKit's job_dir rule for val_file
    assert loaded.params.val_file == loaded.params.job_dir / "val.tfds"
    assert loaded.params.val_metric == "loss"


def test_denoise_fields_are_accepted(tmp_path: Path) -> None:
    loaded = load_params(write(tmp_path, DENOISE))
    p = loaded.params
    assert p.signal_type == "PPG" and p.flatten is True
    assert p.quantization.format == "int16x8" and p.quantization.io_type == "int16"
    assert p.datasets[0].params["params"] == {"duration": 20, "heart_rate": [40, 160]}
    assert p.num_classes == 1
    assert [w.split(" ")[0] for w in loaded.warnings] == ["quantization.mode"]
    assert "quantization.format (INT16X8), the key to write" in loaded.warnings[0]


def test_foundation_temperature_is_training_only(tmp_path: Path) -> None:
    loaded = load_params(write(tmp_path, FOUNDATION))
    assert "temperature" in loaded.ignored
    assert loaded.params.num_classes == 128 and loaded.params.quantization.io_type == "float32"


def test_segmentation_keeps_threshold_value(tmp_path: Path) -> None:
    loaded = load_params(write(tmp_path, SEGMENTATION))
    assert loaded.params.test_metric_threshold == 0.98
    assert len(loaded.warnings) == 1


def test_dataset_path_is_read_as_params(tmp_path: Path) -> None:
    loaded = load_params(write(tmp_path, DOWNLOAD))
    # moved into params, then resolved against the config's folder like any dataset path
    assert Path(loaded.params.datasets[1].params["path"]) == (tmp_path / "datasets" / "ludb").resolve()
    (line,) = loaded.warnings
    assert line.startswith("datasets[1].path is a typo for datasets[1].params")


def test_dataset_path_next_to_params_is_dropped_with_a_warning(tmp_path: Path) -> None:
    data = {"datasets": [{"name": "ludb", "params": {"path": "a"}, "path": "b"}]}
    loaded = load_params(write(tmp_path, data))
    assert Path(loaded.params.datasets[0].params["path"]) == (tmp_path / "a").resolve()
    assert "already set" in loaded.warnings[0]


def test_other_typos_in_a_heartkit_config_stay_errors(tmp_path: Path) -> None:
    data = {**RHYTHM, "frame_sise": 800}
    data["quantization"] = {**RHYTHM["quantization"], "fallbak": True}
    with pytest.raises(ConfigError) as err:
        load_params(write(tmp_path, data))
    msg = err.value.message
    assert "did you mean 'frame_size'" in msg
    assert "did you mean 'quantization.fallback'" in msg
    assert "quantization.mode" not in msg  # the known quirk is not an error here


def test_extra_named_params_key_is_still_an_error(tmp_path: Path) -> None:
    data = {**RHYTHM, "preprocesses": [{"name": "layer_norm", "parms": {}}]}
    with pytest.raises(ConfigError) as err:
        load_params(write(tmp_path, data))
    assert "preprocesses[0].parms" in err.value.message and "did you mean" in err.value.message


def test_io_type_int16_needs_int16x8(tmp_path: Path) -> None:
    data = {"quantization": {"format": "int8", "io_type": "int16"}}
    with pytest.raises(ConfigError) as err:
        load_params(write(tmp_path, data))
    assert "io_type int16 needs format int16x8" in err.value.message


def test_config_check_prints_one_line_per_quirk(tmp_path: Path) -> None:
    r = run_cli("config", "check", str(write(tmp_path, RHYTHM)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    quirk_lines = [ln for ln in r.stderr.splitlines() if "HeartKit config:" in ln]
    assert len(quirk_lines) == 2, r.stderr
    assert "(HeartKit config)" in r.stdout + r.stderr


def test_config_check_non_heartkit_typo_fails_with_did_you_mean(tmp_path: Path) -> None:
    r = run_cli(
        "config", "check", str(write(tmp_path, {"name": "x", "quantization": {"mode": "FP32"}})), cwd=tmp_path
    )
    assert r.returncode == 2
    assert "did you mean 'quantization.format'" in r.stderr


def test_migrate_writes_a_clean_config_and_comments_each_change(tmp_path: Path) -> None:
    src = write(tmp_path, RHYTHM, "arr.json")
    out = tmp_path / "clean.json"
    r = run_cli("config", "migrate", str(src), "-o", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    comments = [ln for ln in r.stdout.splitlines() if ln.startswith("# ") and not ln.startswith("# wrote ")]
    assert len(comments) == 2
    assert any("quantization.mode (FP32)" in c for c in comments)
    clean = json.loads(out.read_text())
    assert "mode" not in clean["quantization"] and "augmentations-dis" not in clean
    assert clean["quantization"]["format"] == "INT8"  # HeartKit's default, now stated
    assert clean["epochs"] == 150  # still a HeartKit config
    assert "#" not in out.read_text()
    again = load_params(out)
    assert again.heartkit and again.warnings == ()
    assert again.params.to_dict() | {"job_dir": None} == load_params(src).params.to_dict() | {"job_dir": None}


def test_migrate_to_stdout_puts_comments_on_stderr(tmp_path: Path) -> None:
    r = run_cli("config", "migrate", str(write(tmp_path, DOWNLOAD)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    clean = json.loads(r.stdout)
    assert clean["datasets"][1] == {"name": "ludb", "params": {"path": "./datasets/ludb"}}
    assert "# moved datasets[1].path into datasets[1].params" in r.stderr


def test_migrate_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    src = write(tmp_path, RHYTHM)
    before = src.read_text()
    r = run_cli("config", "migrate", str(src), "-o", str(src), cwd=tmp_path)
    assert r.returncode == 2 and src.read_text() == before

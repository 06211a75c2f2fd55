"""The models the benches share: the demo export and HeartKit's rhythm TCN (config, build, export).

The TCN: neuralspot-edge's ``TcnModel`` with the block parameters of HeartKit's rhythm TCN (its
documented model configuration: 5 blocks of 12/20/28/36/40 filters, (1, 3) kernels, dilations
1/1/2/4/8, squeeze-excite), a global-average-pooling classification head, on 512-sample frames of
the synthetic dataset, trained for a few epochs (a few seconds) in a child process, so the caller
stays TensorFlow-free.

Used by bench/export_bench.py (times the export of both) and bench/qemu_bench.py (instructions per
inference of both on emulated Cortex-M). Not part of the hkdeploy package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS = ("demo", "tcn")
DEMO_CONFIG = REPO / "configs" / "demo.json"

# HeartKit's rhythm TCN (docs/models/index.md of AmbiqAI/heartkit, the `--task rhythm` example).
TCN_BLOCKS = [
    {"filters": 12, "se_ratio": 0, "dilation": [1, 1]},
    {"filters": 20, "se_ratio": 2, "dilation": [1, 1]},
    {"filters": 28, "se_ratio": 2, "dilation": [1, 2]},
    {"filters": 36, "se_ratio": 2, "dilation": [1, 4]},
    {"filters": 40, "se_ratio": 2, "dilation": [1, 8]},
]

TCN_CONFIG: dict[str, Any] = {
    "name": "tcn_bench",
    "datasets": [
        {"name": "synthetic", "params": {"num_patients": 60, "frames_per_patient": 20, "segment_frames": 5}}
    ],
    "sampling_rate": 100,
    "frame_size": 512,
    "preprocesses": [{"name": "layer_norm", "params": {"epsilon": 0.01}}],
    "test_size": 200,
    "test_patients": 0.2,
    "num_classes": 4,
    "class_map": {"0": 0, "1": 1, "2": 2, "3": 3},
    "class_names": ["NSR", "SBRAD", "STACH", "AFIB"],
    "use_logits": False,
    "quantization": {"enabled": True, "format": "int8", "io_type": "int8", "calibration_size": 128},
    "test_metric": "acc",
    "test_metric_threshold": None,
    "seed": 42,
    "board": {"name": "apollo4p_evb"},
}

_BUILD_TCN = r"""
import sys, json, keras, numpy as np
from neuralspot_edge.models import TcnModel
from hkdeploy.config import load_params
from hkdeploy.datasets import load_split
params = load_params(sys.argv[1]).params
keras.utils.set_random_seed(params.seed)
blocks = [dict(depth=1, branch=1, kernel=[1, 3], dropout=0.10, ex_ratio=1, norm="batch", **b)
          for b in json.loads(sys.argv[3])]
inputs = keras.Input(shape=(params.frame_size, 1), name="ecg")
y = TcnModel.layer_from_params(inputs, dict(input_kernel=[1, 3], input_norm="batch", blocks=blocks,
                               output_kernel=[1, 3], include_top=False, use_logits=True), None)
y = keras.layers.Reshape((params.frame_size, -1))(y) if len(y.shape) == 4 else y
y = keras.layers.GlobalAveragePooling1D()(y)
model = keras.Model(inputs, keras.layers.Dense(params.num_classes, name="logits")(y), name="rhythm_tcn")
train = load_split(params, "train")
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(train.x, train.y, batch_size=32, epochs=int(sys.argv[4]), verbose=0)
model.save(sys.argv[2])
print(model.count_params())
"""


def child_env() -> dict[str, str]:
    """The environment for child processes: this worktree's hkdeploy first, TensorFlow quiet."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def write_tcn_config(folder: Path) -> Path:
    """``folder/tcn.json``: TCN_CONFIG with its model file and job dir in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "tcn.json"
    doc = {**TCN_CONFIG, "model_file": str(folder / "rhythm_tcn.keras"), "job_dir": str(folder)}
    config.write_text(json.dumps(doc, indent=2) + "\n")
    return config


def build_tcn(config: Path, out: Path, epochs: int) -> None:
    """Build and briefly train the rhythm TCN (in a child process: this one stays TensorFlow-free)."""
    proc = subprocess.run(
        [sys.executable, "-c", _BUILD_TCN, str(config), str(out), json.dumps(TCN_BLOCKS), str(epochs)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"building the TCN failed:\n{proc.stderr[-3000:]}")
    print(f"TCN: {proc.stdout.strip().splitlines()[-1]} parameters, trained {epochs} epochs -> {out}")


def model_config(name: str, folder: Path, tcn_epochs: int = 2) -> Path:
    """The config of bench model ``name`` (demo | tcn); for the TCN, config and trained model are
    made in ``folder`` unless already there."""
    if name == "demo":
        return DEMO_CONFIG
    if name == "tcn":
        config = write_tcn_config(folder)
        model = folder / "rhythm_tcn.keras"
        if not model.is_file():
            build_tcn(config, model, tcn_epochs)
        return config
    sys.exit(f"unknown model {name!r}: one of {', '.join(MODELS)}")


def ensure_export(name: str, folder: Path, tcn_epochs: int = 2) -> tuple[Path, Path]:
    """(config, export dir) of bench model ``name`` exported into ``folder/export``; exported with
    ``hkdeploy -q export`` in a child process only when ``folder/export/export_report.json`` is
    missing (a threshold failure, exit 1, still writes every artifact)."""
    config = model_config(name, folder, tcn_epochs)
    export_dir = folder / "export"
    if not (export_dir / "export_report.json").is_file():
        exe = str(Path(sys.executable).parent / "hkdeploy")
        print(f"{name}: exporting into {export_dir}", flush=True)
        proc = subprocess.run(
            [exe, "-q", "export", "-c", str(config), "--job-dir", str(folder)],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=3600,
            check=False,
        )
        if proc.returncode not in (0, 1) or not (export_dir / "export_report.json").is_file():
            sys.exit(f"exporting {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return config, export_dir

"""Small models for the export tests (trained once per session)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An npz dataset: 64-sample frames, 4 classes from a fixed random projection."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 64, 1)).astype(np.float32)
    y = np.argmax(x[..., 0] @ rng.normal(size=(64, 4)), axis=1)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x=x, y=y, patient_ids=np.arange(len(x)))
    return path


def tiny_config(data: Path, model: Path, job: Path, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "tiny",
        "datasets": [{"name": "npz", "params": {"path": str(data)}}],
        "frame_size": 64,
        "num_classes": 4,
        "class_map": {"0": 0, "1": 1, "2": 2, "3": 3},
        "test_size": 300,
        "test_patients": 0.2,
        "model_file": str(model),
        "job_dir": str(job),
        "quantization": {"calibration_size": 200},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


@pytest.fixture(scope="session")
def conv_model(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    """A trained Conv1D model with BatchNorm, ReLU, a dilated conv and a DepthwiseConv1D."""
    import keras

    keras.utils.set_random_seed(1)
    with np.load(tiny_data) as d:
        x, y = d["x"], d["y"]
    inp = keras.Input((64, 1))
    h = keras.layers.Conv1D(8, 5, padding="same", use_bias=False)(inp)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv1D(8, 3, dilation_rate=4, padding="same", activation="relu")(h)
    h = keras.layers.DepthwiseConv1D(3, padding="same")(h)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(4)(h)
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:2000], y[:2000], epochs=3, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("models") / "conv.keras"
    model.save(path)
    return path

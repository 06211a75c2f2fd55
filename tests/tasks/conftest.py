"""Tiny segmentation (U-Net) and denoise models and their data, built and trained in seconds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

T = 64


def seg_data(n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Signals with a label per time step: 0 below -0.5, 1 in between, 2 above 0.5 (smoothed input)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, T + 4)).astype(np.float32)
    x = np.stack([np.convolve(r, np.ones(5) / 5 * 2.0, mode="valid") for r in raw]).astype(np.float32)
    y = np.digitize(x, [-0.5, 0.5]).astype(np.int64)
    return x[..., None], y


def den_data(n: int = 1200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sines in, clean sines out (float targets per time step)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None, :]
    freq = rng.uniform(0.03, 0.12, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    clean = np.sin(2 * np.pi * freq * t + phase).astype(np.float32)
    noisy = clean + rng.normal(scale=0.3, size=clean.shape).astype(np.float32)
    return noisy[..., None], clean


def unet(classes: int = 3) -> Any:
    import keras

    inp = keras.Input((T, 1))
    skip = keras.layers.Conv1D(8, 5, padding="same", activation="relu")(inp)
    h = keras.layers.MaxPooling1D(2)(skip)
    h = keras.layers.Conv1D(8, 3, padding="same", activation="relu")(h)
    h = keras.layers.UpSampling1D(2, name="up")(h)
    h = keras.layers.Concatenate()([skip, h])
    return keras.Model(inp, keras.layers.Conv1D(classes, 1, name="logits")(h), name="tiny_unet")


def denoiser() -> Any:
    import keras

    inp = keras.Input((T, 1))
    h = keras.layers.Conv1D(8, 7, padding="same", activation="relu")(inp)
    h = keras.layers.Conv1D(8, 5, padding="same", activation="relu")(h)
    return keras.Model(inp, keras.layers.Conv1D(1, 3, padding="same", name="out")(h), name="tiny_den")


@pytest.fixture(scope="session")
def seg_job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import keras

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("seg")
    x, y = seg_data()
    np.savez(root / "seg.npz", x=x, y=y, patient_ids=np.arange(len(x)) // 20)
    model = unet()
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x[:1000], y[:1000], epochs=6, batch_size=64, verbose=0)
    model.save(root / "unet.keras")
    return {"data": root / "seg.npz", "model": root / "unet.keras", "root": root}


@pytest.fixture(scope="session")
def den_job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import keras

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("den")
    x, y = den_data()
    np.savez(root / "den.npz", x=x, y=y, patient_ids=np.arange(len(x)) // 20)
    model = denoiser()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x[:1000], y[:1000, :, None], epochs=6, batch_size=64, verbose=0)
    model.save(root / "den.keras")
    return {"data": root / "den.npz", "model": root / "den.keras", "root": root}


def task_config(data: Path, model: Path, job: Path, **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "task",
        "datasets": [{"name": "npz", "params": {"path": str(data)}}],
        "frame_size": T,
        "test_size": 100,
        "test_patients": 0.2,
        "model_file": str(model),
        "job_dir": str(job),
        "quantization": {"calibration_size": 200},
        "link": {"run_timeout": 300},
    }
    cfg.update(extra)
    return cfg

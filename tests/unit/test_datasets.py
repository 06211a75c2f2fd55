"""npz and synthetic datasets: shapes, splits, determinism, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.config import load_params
from hkdeploy.datasets import load_split
from hkdeploy.datasets.synthetic import CLASS_NAMES
from hkdeploy.errors import UserError


def params(**over: Any):  # type: ignore[no-untyped-def]
    base: dict[str, Any] = {
        "frame_size": 250,
        "sampling_rate": 250,
        "num_classes": 4,
        "class_map": {"0": 0, "1": 1, "2": 2, "3": 3},
    }
    base.update(over)
    return load_params(data=base).params


def test_npz_split_by_patient_and_sampling(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 250)).astype(np.float32)
    y = rng.integers(0, 3, size=100)
    pid = np.repeat(np.arange(10), 10)
    np.savez(tmp_path / "d.npz", x=x, y=y, patient_ids=pid)
    p = params(datasets=[{"name": "npz", "params": {"path": str(tmp_path / "d.npz")}}], test_patients=0.3)
    test, train = load_split(p, "test"), load_split(p, "train")
    assert test.x.shape == (30, 250, 1) and train.x.shape == (70, 250, 1)
    assert set(test.patient_ids.tolist()).isdisjoint(train.patient_ids.tolist())
    # frames are the file's frames, labels unchanged by the identity class_map
    row = int(np.flatnonzero((x == test.x[0, :, 0]).all(axis=1))[0])
    assert y[row] == test.y[0]
    s1, s2 = load_split(p, "test", size=7), load_split(p, "test", size=7)
    assert len(s1) == 7 and np.array_equal(s1.x, s2.x)
    other = load_split(params(datasets=p.datasets, seed=7, test_patients=0.3), "test", size=7)
    assert not np.array_equal(other.x, s1.x)


def test_npz_class_map_drops_and_maps(tmp_path: Path) -> None:
    x = np.zeros((6, 250), np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 7, 8, 3, 0, 7]))
    p = params(
        datasets=[
            {"name": "npz", "params": {"path": str(tmp_path / "d.npz"), "test_path": str(tmp_path / "d.npz")}}
        ],
        num_classes=2,
        class_map={"0": 0, "7": 1, "8": 1},
    )
    split = load_split(p, "test")
    assert split.y.tolist() == [0, 1, 1, 0, 1]


def test_npz_rejects_pickle_and_bad_shapes(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    p = params(datasets=[{"name": "npz", "params": {"path": str(tmp_path / "obj.npz")}}])
    with pytest.raises(UserError) as err:
        load_split(p, "test")
    assert "cannot read npz dataset" in err.value.message and "without pickled objects" in (
        err.value.hint or ""
    )
    np.savez(tmp_path / "shape.npz", x=np.zeros((3, 250)), y=np.zeros(4, np.int64))
    p = params(datasets=[{"name": "npz", "params": {"path": str(tmp_path / "shape.npz")}}])
    with pytest.raises(UserError, match="expected x"):
        load_split(p, "test")
    p = params(datasets=[{"name": "npz", "params": {"path": str(tmp_path / "nope.npz")}}])
    with pytest.raises(UserError, match="does not exist"):
        load_split(p, "test")
    np.savez(tmp_path / "fs.npz", x=np.zeros((3, 100)), y=np.zeros(3, np.int64))
    p = params(datasets=[{"name": "npz", "params": {"path": str(tmp_path / "fs.npz")}}])
    with pytest.raises(UserError, match="frame_size"):
        load_split(p, "test")


def test_no_dataset_configured() -> None:
    with pytest.raises(UserError, match="no dataset configured"):
        load_split(params(), "test")


@pytest.fixture(scope="module")
def synth_params():  # type: ignore[no-untyped-def]
    return params(
        datasets=[
            {"name": "synthetic", "params": {"num_patients": 6, "frames_per_patient": 8, "segment_frames": 2}}
        ],
        test_patients=2,
    )


def test_synthetic_shapes_and_classes(synth_params) -> None:  # type: ignore[no-untyped-def]
    test = load_split(synth_params, "test")
    train = load_split(synth_params, "train")
    assert test.x.shape == (16, 250, 1) and train.x.shape == (32, 250, 1)
    assert test.x.dtype == np.float32 and test.y.dtype == np.int64
    assert set(np.unique(np.concatenate([test.y, train.y]))) <= set(range(len(CLASS_NAMES)))
    assert len(np.unique(np.concatenate([test.y, train.y]))) >= 3
    assert np.all(np.isfinite(test.x)) and test.x.std() > 0
    # consecutive frames of one record are contiguous in the signal
    assert test.record_pos is not None and test.record_pos[:8].tolist() == list(range(8))


def test_synthetic_deterministic_and_seeded(synth_params) -> None:  # type: ignore[no-untyped-def]
    from hkdeploy.datasets import synthetic

    a = load_split(synth_params, "test")
    synthetic._record.cache_clear()
    b = load_split(synth_params, "test")
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    c = load_split(params(datasets=synth_params.datasets, test_patients=2, seed=1), "test")
    assert not np.array_equal(a.x, c.x)


def test_synthetic_honours_rate_and_frame(synth_params) -> None:  # type: ignore[no-untyped-def]
    p = params(datasets=synth_params.datasets, test_patients=2, frame_size=500, sampling_rate=100)
    split = load_split(p, "test")
    assert split.x.shape[1] == 500
    # ~1 s of a 100 Hz record is 100 samples: the dominant period is in a physiological range
    sig = split.x[0, :, 0] - split.x[0, :, 0].mean()
    ac = np.correlate(sig, sig, "full")[len(sig) - 1 :]
    lag = int(np.argmax(ac[25:300])) + 25  # 0.25 s .. 3 s
    assert 25 <= lag <= 300


def test_synthetic_bad_params() -> None:
    p = params(datasets=[{"name": "synthetic", "params": {"rhythms": ["VFIB"]}}])
    with pytest.raises(UserError, match="unknown rhythm"):
        load_split(p, "test")
    p = params(datasets=[{"name": "synthetic", "params": {"colour": 1}}])
    with pytest.raises(UserError, match="bad params"):
        load_split(p, "test")


def test_layer_norm_preprocess(synth_params) -> None:  # type: ignore[no-untyped-def]
    p = params(
        datasets=synth_params.datasets,
        test_patients=2,
        preprocesses=[{"name": "layer_norm", "params": {"epsilon": 1e-6}}],
    )
    split = load_split(p, "test")
    assert np.allclose(split.x.mean(axis=1), 0, atol=1e-4)
    assert np.allclose(split.x.std(axis=1), 1, atol=1e-3)

"""``val_file``: HeartKit's saved tf.data validation set as the test-set source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hkdeploy.config import load_params
from hkdeploy.datasets import load_split
from hkdeploy.errors import UserError

tf = pytest.importorskip("tensorflow", reason="pip install tensorflow-cpu")


def _params(tmp_path: Path, **extra: object):  # type: ignore[no-untyped-def]
    data = {
        "job_dir": str(tmp_path / "job"),
        "frame_size": 64,
        "num_classes": 3,
        "val_file": "val.tfds",
        "epochs": 3,  # a HeartKit config
        "datasets": [{"name": "ptbxl", "params": {"path": "./nowhere"}}],
        "preprocesses": [{"name": "scale", "params": {"factor": 100.0}}],
        **extra,
    }
    return load_params(data=data).params


def test_batched_one_hot_tuples_like_heartkit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 64, 1)).astype(np.float32)
    labels = np.array([0, 1, 2, 2, 1, 0, 0, 1, 2, 1])
    y = np.eye(3, dtype=np.float32)[labels]
    p = _params(tmp_path)
    assert p.val_file == tmp_path / "job" / "val.tfds"
    tf.data.Dataset.from_tensor_slices((x, y)).batch(4).save(str(p.val_file))
    data = load_split(p, "test")
    np.testing.assert_array_equal(data.y, labels)  # one-hot decoded, class_map not applied
    np.testing.assert_array_equal(data.x, x)  # stored frames are already preprocessed: no x100
    assert len(load_split(p, "test", size=4)) == 4


def test_unbatched_dict_elements_with_integer_labels(tmp_path: Path) -> None:
    x = np.ones((5, 64), dtype=np.float32)
    labels = np.array([2, 0, 1, 1, 0], dtype=np.int32)
    p = _params(tmp_path)
    tf.data.Dataset.from_tensor_slices({"data": x, "labels": labels}).save(str(p.val_file))
    data = load_split(p, "test")
    assert data.x.shape == (5, 64, 1)
    np.testing.assert_array_equal(data.y, labels)


def test_wrong_frame_size_and_missing_file_are_user_errors(tmp_path: Path) -> None:
    p = _params(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        load_split(p, "test")
    tf.data.Dataset.from_tensor_slices((np.zeros((2, 32, 1), np.float32), np.zeros(2))).save(str(p.val_file))
    with pytest.raises(UserError, match=r"frames of shape \(32, 1\), config frame_size is 64"):
        load_split(p, "test")

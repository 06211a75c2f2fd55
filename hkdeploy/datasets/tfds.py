"""``val_file``: a saved tf.data dataset (HeartKit's ``val.tfds``) as the source of test frames.

HeartKit's training writes its validation set with ``tf.data.Dataset.save`` after its own
preprocessing and label mapping, and its export reads it back as the test set. hkdeploy does the
same: frames and labels are used as stored (no ``class_map``, no ``preprocesses``), one-hot labels
are decoded with argmax. Elements may be ``(x, y)`` tuples or dicts (``data``/``labels`` or
``x``/``y``), batched or not. ``tf.data.Dataset.load`` reads TensorFlow's snapshot format (protocol
buffers and tensors, no pickle). TensorFlow is imported only when a val_file is actually read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hkdeploy.datasets.base import DataSplit
from hkdeploy.errors import UserError

_X_KEYS = ("data", "x", "inputs", "input")
_Y_KEYS = ("labels", "y", "targets", "target")


def _pick(element: Any, keys: tuple[str, ...], what: str, path: Path) -> Any:
    for key in keys:
        if key in element:
            return element[key]
    raise UserError(
        f"val_file {path}: element dict has no {what} key (looked for {', '.join(keys)}; it has "
        f"{', '.join(sorted(map(str, element)))})",
        hint="save the dataset as (x, y) tuples or dicts with 'data' and 'labels'",
    )


def _split_element(element: Any, path: Path) -> tuple[Any, Any]:
    if isinstance(element, dict):
        return _pick(element, _X_KEYS, "input", path), _pick(element, _Y_KEYS, "label", path)
    if isinstance(element, tuple | list) and len(element) >= 2:
        return element[0], element[1]
    raise UserError(
        f"val_file {path}: each element must be (x, y), got {type(element).__name__}",
        hint="save the dataset as (x, y) tuples (tf.data.Dataset.save)",
    )


def read_saved_dataset(path: Path) -> tuple[npt.NDArray[np.float32], npt.NDArray[Any]]:
    """All (x, y) of the saved tf.data dataset at ``path`` as arrays (batches concatenated)."""
    if not path.exists():
        raise UserError(
            f"val_file {path} does not exist",
            hint="run HeartKit's train step (it writes val.tfds in job_dir) or set val_file to null",
        )
    import tensorflow as tf

    try:
        ds = tf.data.Dataset.load(str(path))
    except Exception as exc:  # TF raises NotFoundError / InvalidArgumentError / ValueError
        raise UserError(
            f"cannot read val_file {path} as a saved tf.data dataset: {str(exc).splitlines()[0]}",
            hint="it must be a folder written by tf.data.Dataset.save",
        ) from None
    spec = ds.element_spec
    x_spec, _ = _split_element(spec, path)
    batched = x_spec.shape.rank is not None and x_spec.shape.rank >= 3
    xs: list[Any] = []
    ys: list[Any] = []
    for element in ds.as_numpy_iterator():
        x, y = _split_element(element, path)
        xs.append(np.asarray(x) if batched else np.asarray(x)[None])
        ys.append(np.asarray(y) if batched else np.asarray(y)[None])
    if not xs:
        raise UserError(f"val_file {path} holds no element", hint="check HeartKit's val_size")
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def decode_labels(y: npt.NDArray[Any], num_classes: int, x_shape: tuple[int, ...]) -> npt.NDArray[Any]:
    """Class indices from stored labels: one-hot / probabilities -> argmax; integers kept.

    Classification: ``[N]`` or ``[N, C]``. Per-time-step labels (``[N, T]`` or ``[N, T, C]``) keep
    their time axis. Regression targets (float, same shape as x) are returned as float32.
    """
    if np.issubdtype(y.dtype, np.floating) and y.shape == x_shape:
        return y.astype(np.float32)  # a target signal (denoise)
    if y.ndim >= 2 and y.shape[-1] == num_classes and num_classes > 1:
        return np.argmax(y, axis=-1).astype(np.int64)
    if y.ndim == 2 and y.shape[-1] == 1:
        y = y[:, 0]
    return np.rint(y).astype(np.int64) if np.issubdtype(y.dtype, np.floating) else y.astype(np.int64)


def load_val_file(path: Path, num_classes: int, frame_size: int) -> DataSplit:
    """The frames of ``val_file`` as a DataSplit (labels decoded, frames checked against frame_size)."""
    x, y_raw = read_saved_dataset(path)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[1] != frame_size:
        raise UserError(
            f"val_file {path} has frames of shape {tuple(x.shape[1:])}, config frame_size is {frame_size}",
            hint="set frame_size to the frame length HeartKit trained with",
        )
    if len(y_raw) != len(x):
        raise UserError(
            f"val_file {path}: {len(x)} frames but {len(y_raw)} labels",
            hint="save the test set again as (x, y) pairs with tf.data.Dataset.save",
        )
    y = decode_labels(y_raw, num_classes, tuple(x.shape))
    return DataSplit(x, y, np.arange(len(x), dtype=np.int64))

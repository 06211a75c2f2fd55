"""``npz`` dataset: arrays in a NumPy .npz file (no pickle)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hkdeploy.datasets.base import Dataset, DatasetFactory, DataSplit, Split, split_patients
from hkdeploy.errors import UserError


class NpzDataset(Dataset):
    """Frames from an .npz file.

    Args:
        path: the .npz file (``x``: [N, frame_size] or [N, frame_size, C]; ``y``: [N] int labels,
            [N, frame_size] int labels per time step (one-hot [N, frame_size, C] too), or float
            targets [N, frame_size(, 1)] for denoise;
            optional ``patient_ids``: [N] ints, used to hold out whole patients for testing).
        test_path: optional separate .npz for the test split (then ``path`` is the train split).
        x_key / y_key / patient_key: array names inside the file.
    """

    def __init__(
        self,
        path: str | Path,
        test_path: str | Path | None = None,
        x_key: str = "x",
        y_key: str = "y",
        patient_key: str = "patient_ids",
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.test_path = Path(test_path) if test_path else None
        self.keys = (x_key, y_key, patient_key)

    def _read(self, path: Path) -> dict[str, Any]:
        x_key, y_key, p_key = self.keys
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise UserError(
                f"npz dataset {path} does not exist", hint="check datasets[].params.path"
            ) from None
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise UserError(
                f"cannot read npz dataset {path}: {exc}",
                hint="it must be a NumPy .npz without pickled objects (np.savez(path, x=..., y=...))",
            ) from exc
        for key in (x_key, y_key):
            if key not in arrays:
                raise UserError(
                    f"npz dataset {path} has no array '{key}' (it has: {', '.join(sorted(arrays))})",
                    hint="set x_key / y_key in the dataset params",
                )
        x, y = arrays[x_key], arrays[y_key]
        per_step = y.ndim >= 2 and len(y) == len(x) and x.ndim >= 2 and y.shape[1] == x.shape[1]
        if x.ndim not in (2, 3) or len(x) != len(y) or not (y.ndim == 1 or (per_step and y.ndim <= 3)):
            raise UserError(
                f"npz dataset {path}: expected x [N, frame] or [N, frame, C] and y [N] (classes), "
                f"y [N, frame] / [N, frame, C] (segmentation labels or denoise targets), got x {x.shape}, "
                f"y {y.shape}",
                hint="save the arrays with np.savez(path, x=..., y=...) in one of those shapes",
            )
        if not np.issubdtype(y.dtype, np.integer) and not (per_step and np.issubdtype(y.dtype, np.floating)):
            raise UserError(
                f"npz dataset {path}: y must hold integer labels (or float targets per time step), got {y.dtype}",
                hint="store class indices as integers (y.astype(np.int64))",
            )
        return {"x": x, "y": y, "pid": arrays.get(p_key)}

    def load(
        self, split: Split, *, sampling_rate: int, frame_size: int, seed: int, test_patients: float | None
    ) -> DataSplit:
        if self.test_path is not None:
            arrays = self._read(self.test_path if split == "test" else self.path)
            pid = arrays["pid"]
            return DataSplit(
                arrays["x"].astype(np.float32),
                _labels(arrays["y"]),
                None if pid is None else pid.astype(np.int64),
            )
        arrays = self._read(self.path)
        x, y, pid = arrays["x"], arrays["y"], arrays["pid"]
        if pid is None:
            pid = np.arange(len(x), dtype=np.int64)  # every frame its own "patient"
        pid = pid.astype(np.int64)
        test_set = split_patients(pid, test_patients, seed)
        mask = np.isin(pid, list(test_set))
        if split == "train":
            mask = ~mask
        idx = np.flatnonzero(mask)
        return DataSplit(x[idx].astype(np.float32), _labels(y[idx]), pid[idx])


def _labels(y: np.ndarray) -> np.ndarray:
    """Integer labels as int64; float targets (denoise) as float32."""
    return y.astype(np.float32) if np.issubdtype(y.dtype, np.floating) else y.astype(np.int64)


DatasetFactory.register("npz", NpzDataset)

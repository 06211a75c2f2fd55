"""``synthetic`` dataset: seeded synthetic single-lead ECG records from physiokit.

Each patient is one record made of segments; each segment has one rhythm class:

=====  ======  =================  ==================
label  name    physiokit preset   heart rate (bpm)
=====  ======  =================  ==================
0      NSR     SR                 60 - 95
1      SBRAD   SR                 38 - 55
2      STACH   SR                 105 - 150
3      AFIB    AFIB               70 - 140
=====  ======  =================  ==================

Records are fully determined by (seed, patient id), so every split and sample is reproducible.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import random
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hkdeploy.datasets.base import Dataset, DatasetFactory, DataSplit, Split, split_patients
from hkdeploy.errors import UserError
from hkdeploy.fsutil import write_bytes

_CACHE_VERSION = 1

RHYTHMS: dict[str, tuple[str, float, float]] = {
    "NSR": ("SR", 60.0, 95.0),
    "SBRAD": ("SR", 38.0, 55.0),
    "STACH": ("SR", 105.0, 150.0),
    "AFIB": ("AFIB", 70.0, 140.0),
}
CLASS_NAMES = list(RHYTHMS)


@contextmanager
def _seeded_globals(seed: int) -> Iterator[None]:
    """physiokit draws from the global ``random`` and ``np.random`` states: seed, then restore them."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def cache_dir() -> Path:
    """Where generated records are cached (``$HKDEPLOY_CACHE`` or ``~/.cache/hkdeploy``)."""
    root = os.environ.get("HKDEPLOY_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "hkdeploy")
    return Path(root) / "synthetic"


@functools.lru_cache(maxsize=4096)
def _record(
    seed: int,
    patient: int,
    frames: int,
    segment_frames: int,
    frame_size: int,
    sampling_rate: int,
    rhythms: tuple[str, ...],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """One record, from the disk cache when it was generated before (same inputs, same physiokit)."""
    from importlib.metadata import version

    key = json.dumps(
        [
            _CACHE_VERSION,
            version("physiokit"),
            seed,
            patient,
            frames,
            segment_frames,
            frame_size,
            sampling_rate,
            list(rhythms),
        ]
    )
    path = cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["signal"], data["labels"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        pass
    signal, labels = _synthesize(seed, patient, frames, segment_frames, frame_size, sampling_rate, rhythms)
    try:
        buf = io.BytesIO()
        np.savez(buf, signal=signal, labels=labels)
        write_bytes(path, buf.getvalue())
    except OSError:
        pass  # a read-only home is fine: we just don't cache
    return signal, labels


def _synthesize(
    seed: int,
    patient: int,
    frames: int,
    segment_frames: int,
    frame_size: int,
    sampling_rate: int,
    rhythms: tuple[str, ...],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    from physiokit import ecg

    rng = np.random.default_rng([seed, patient])
    signal = np.empty(frames * frame_size, dtype=np.float32)
    labels = np.empty(frames, dtype=np.int64)
    gain = rng.uniform(0.6, 1.6)
    for start in range(0, frames, segment_frames):
        n = min(segment_frames, frames - start)
        label = int(rng.integers(len(rhythms)))
        preset, lo, hi = RHYTHMS[rhythms[label]]
        with _seeded_globals(int(rng.integers(2**31))), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # physiokit casts complex noise to real
            sig, _, _ = ecg.synthesize(
                signal_length=n * frame_size,
                sample_rate=sampling_rate,
                leads=1,
                heart_rate=float(rng.uniform(lo, hi)),
                preset=ecg.EcgPreset(preset),
                noise_multiplier=float(rng.uniform(0.3, 1.5)),
            )
        signal[start * frame_size : (start + n) * frame_size] = np.asarray(sig[0], dtype=np.float32) * gain
        labels[start : start + n] = label
    return signal, labels


class SyntheticEcgDataset(Dataset):
    """Synthetic rhythm records (see module doc).

    Args:
        num_patients: number of records.
        frames_per_patient: frames per record.
        segment_frames: frames per rhythm segment (the rhythm may change between segments).
        rhythms: which rhythm classes to generate, in label order (default NSR, SBRAD, STACH, AFIB).
    """

    def __init__(
        self,
        num_patients: int = 50,
        frames_per_patient: int = 20,
        segment_frames: int = 5,
        rhythms: Sequence[str] = tuple(CLASS_NAMES),
    ) -> None:
        super().__init__()
        unknown = [r for r in rhythms if r not in RHYTHMS]
        if unknown:
            raise UserError(
                f"synthetic dataset: unknown rhythm(s) {unknown}", hint=f"choose from {CLASS_NAMES}"
            )
        if num_patients < 2 or frames_per_patient < 1 or segment_frames < 1:
            raise UserError(
                "synthetic dataset needs num_patients >= 2, frames_per_patient >= 1 and segment_frames >= 1, "
                f"got {num_patients}, {frames_per_patient}, {segment_frames}",
                hint="fix the synthetic dataset's params in the config",
            )
        self.num_patients = int(num_patients)
        self.frames_per_patient = int(frames_per_patient)
        self.segment_frames = int(segment_frames)
        self.rhythms = tuple(rhythms)

    def load(
        self, split: Split, *, sampling_rate: int, frame_size: int, seed: int, test_patients: float | None
    ) -> DataSplit:
        patients = np.arange(self.num_patients, dtype=np.int64)
        test_set = split_patients(patients, test_patients, seed)
        chosen = [int(p) for p in patients if (int(p) in test_set) == (split == "test")]
        xs, ys, pids, pos = [], [], [], []
        for p in chosen:
            signal, labels = _record(
                seed, p, self.frames_per_patient, self.segment_frames, frame_size, sampling_rate, self.rhythms
            )
            xs.append(signal.reshape(self.frames_per_patient, frame_size, 1))
            ys.append(labels)
            pids.append(np.full(self.frames_per_patient, p, dtype=np.int64))
            pos.append(np.arange(self.frames_per_patient, dtype=np.int64))
        return DataSplit(np.concatenate(xs), np.concatenate(ys), np.concatenate(pids), np.concatenate(pos))


DatasetFactory.register("synthetic", SyntheticEcgDataset)

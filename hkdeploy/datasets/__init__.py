"""Datasets: where test, calibration and QAT frames come from.

A dataset is a class registered in ``DatasetFactory`` (``npz``, ``synthetic``) or named by an import
path in the user's config. ``load_split`` merges the configured datasets, maps labels through
``class_map``, applies ``preprocesses`` and draws a seeded sample. No pickle anywhere.
"""

from __future__ import annotations

from hkdeploy.datasets.base import Dataset, DatasetFactory, DataSplit, load_split
from hkdeploy.datasets.preprocess import PreprocessFactory, apply_preprocesses

# Importing the built-ins registers them.
from hkdeploy.datasets import npz as _npz  # noqa: F401  isort: skip
from hkdeploy.datasets import synthetic as _synthetic  # noqa: F401  isort: skip

__all__ = ["DataSplit", "Dataset", "DatasetFactory", "PreprocessFactory", "apply_preprocesses", "load_split"]

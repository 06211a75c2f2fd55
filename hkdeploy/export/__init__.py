"""The export stage. ``export(params)`` runs it; TensorFlow is imported only inside the steps."""

import os

# TensorFlow's C++ logging (CUDA probing etc.) would drown our one-line messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hkdeploy.export.api import ARTIFACTS, ExportResult, effective_format, export

__all__ = ["ARTIFACTS", "ExportResult", "effective_format", "export"]

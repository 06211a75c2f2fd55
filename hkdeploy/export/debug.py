"""Per-layer quantization error (``quantization.debug``): TF's quantization debugger on the calibration set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hkdeploy.config.params import DeployParams
    from hkdeploy.datasets import DataSplit


def layer_errors(
    model: Any, params: DeployParams, calibration: DataSplit, work: Path
) -> list[dict[str, Any]]:
    """One row per quantized tensor: op, tensor name, scale, RMSE and max |err| vs float (in scale units)."""
    import tensorflow as tf

    from hkdeploy.export.load import deployable

    fixed = deployable(model, params.use_logits)
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    frames = calibration.x[: min(len(calibration.x), 64)]

    def representative() -> Any:
        for frame in frames:
            yield [frame[None, ...]]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative)
    debugger.run()
    csv_path = work / "debug.csv"
    with open(csv_path, "w") as fh:
        debugger.layer_statistics_dump(fh)
    import csv

    rows = []
    with open(csv_path) as fh:
        for rec in csv.DictReader(fh):
            scale = float(rec.get("scale") or 0) or 1.0
            rows.append(
                {
                    "op": rec.get("op_name", ""),
                    "tensor": rec.get("tensor_name", "")[-60:],
                    "scale": scale,
                    "rmse_in_scales": float(np.sqrt(float(rec.get("mean_squared_error") or 0))) / scale,
                    "max_abs_err_in_scales": float(rec.get("max_abs_error") or 0) / scale,
                }
            )
    return rows

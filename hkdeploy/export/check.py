"""The three-way check: Keras float ▸ host int8 (TFLite reference kernels) ▸ TFLM golden.

TFLite's default XNNPACK kernels differ from TFLM by up to 5 LSB, and its optimized builtin kernels
without delegates still by up to 8 LSB on an int8 softmax (measured on the demo model); TFLite's
reference kernels (``OpResolverType.BUILTIN_REF``) matched TFLM bit for bit on every demo frame, so
they are the "host int8" leg. The TFLM leg runs the reference kernels the board runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hkdeploy import metrics
from hkdeploy.export.inspect import TENSOR_TYPES, ModelInfo
from hkdeploy.tflm import TflmRunner


@dataclass(frozen=True)
class CheckOutputs:
    """Raw outputs of the three legs on the same frames."""

    keras_float: npt.NDArray[np.float32]
    tflite_raw: npt.NDArray[Any]
    tflm_raw: npt.NDArray[Any]
    input_raw: npt.NDArray[Any]


def quantize_inputs(x: npt.NDArray[np.float32], info: ModelInfo) -> npt.NDArray[Any]:
    """Frames in the model input's dtype (quantized with its scale/zero point when integer)."""
    t = info.input
    dtype = TENSOR_TYPES[t.type_code][1]
    shape = (len(x), *t.shape[1:])
    return metrics.quantize(x.reshape(shape), t.scale, t.zero_point, dtype)


def dequantize_outputs(raw: npt.NDArray[Any], info: ModelInfo) -> npt.NDArray[np.float32]:
    """Model outputs as floats."""
    t = info.output
    return metrics.dequantize(raw, t.scale, t.zero_point).reshape(len(raw), -1)


def run_tflite(model: bytes, frames: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """TFLite with its reference kernels (no XNNPACK, no optimized kernels), batch 1 per frame."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        it = tf.lite.Interpreter(
            model_content=model,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
        )
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    results = []
    for frame in frames:
        it.set_tensor(inp["index"], frame.reshape(inp["shape"]).astype(inp["dtype"]))
        it.invoke()
        results.append(np.array(it.get_tensor(out["index"])).reshape(-1))
    return np.stack(results)


def run_keras(model: Any, x: npt.NDArray[np.float32], batch_size: int = 64) -> npt.NDArray[np.float32]:
    """The float model (as deployed: softmax appended when configured) on every frame."""
    outs = [np.asarray(model(x[i : i + batch_size], training=False)) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs).reshape(len(x), -1).astype(np.float32)


def run_three_way(
    keras_model: Any, model: bytes, info: ModelInfo, arena: int, x: npt.NDArray[np.float32]
) -> CheckOutputs:
    """Run the three legs on frames ``x`` (float, preprocessed)."""
    raw_in = quantize_inputs(x, info)
    return CheckOutputs(
        keras_float=run_keras(keras_model, x),
        tflite_raw=run_tflite(model, raw_in),
        tflm_raw=TflmRunner(model, arena).run_many(raw_in),
        input_raw=raw_in,
    )


def evaluate(
    outputs: CheckOutputs, y: npt.NDArray[np.int64], info: ModelInfo, num_classes: int
) -> dict[str, Any]:
    """The metric set for each leg and each pair (see hkdeploy.metrics)."""
    tflite = dequantize_outputs(outputs.tflite_raw, info)
    tflm = dequantize_outputs(outputs.tflm_raw, info)
    keras_f = outputs.keras_float
    integer_out = info.output.dtype in ("int8", "uint8", "int16")
    legs = {
        "keras_float": metrics.classification(y, keras_f.argmax(axis=1), num_classes),
        "tflite_int8": metrics.classification(y, tflite.argmax(axis=1), num_classes),
        "tflm": metrics.classification(y, tflm.argmax(axis=1), num_classes),
    }
    pairs = {
        "keras_float__tflite_int8": metrics.compare(keras_f, tflite),
        "tflite_int8__tflm": metrics.compare(
            tflite,
            tflm,
            outputs.tflite_raw if integer_out else None,
            outputs.tflm_raw if integer_out else None,
        ),
        "keras_float__tflm": metrics.compare(keras_f, tflm),
    }
    return {
        "legs": {k: v.to_dict() for k, v in legs.items()},
        "pairs": {k: v.to_dict() for k, v in pairs.items()},
        "_legs": legs,
    }

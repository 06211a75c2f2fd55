"""Every conversion format, batch-1 conversion of dilated convolutions, TFLM vs TFLite agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.errors import UserError
from hkdeploy.export.check import quantize_inputs, run_tflite
from hkdeploy.export.convert import ConvertSpec, convert_in_subprocess
from hkdeploy.export.inspect import check_tflm_ops, inspect_model
from hkdeploy.tflm import TflmRunner, probe_arena

pytestmark = pytest.mark.slow  # converts with TensorFlow

_CACHE: dict[tuple[str, str], bytes] = {}


def convert(conv_model: Path, tiny_data: Path, tmp: Path, fmt: str, io_type: str = "int8") -> bytes:
    key = (fmt, io_type)
    if key not in _CACHE:
        with np.load(tiny_data) as d:
            np.savez(tmp / "calib.npz", x=d["x"][:100])
        spec = ConvertSpec(
            model_path=str(conv_model),
            out_path=str(tmp / f"{fmt}_{io_type}.tflite"),
            format=fmt,
            io_type=io_type,
            fallback=False,
            conversion="keras",
            calibration_path=str(tmp / "calib.npz"),
            use_logits=True,
        )
        _CACHE[key] = convert_in_subprocess(spec, tmp, [])
    return _CACHE[key]


def frames(tiny_data: Path, n: int = 40) -> np.ndarray:
    with np.load(tiny_data) as d:
        return d["x"][-n:]


def tflm_vs_tflite(model: bytes, tmp: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
    info = inspect_model(model)
    check_tflm_ops(info)
    path = tmp / "m.tflite"
    path.write_bytes(model)
    arena = probe_arena(path)
    raw = quantize_inputs(x, info)
    return TflmRunner(model, arena.board).run_many(raw), run_tflite(model, raw), info


@pytest.mark.parametrize(
    ("fmt", "io_type", "in_dtype", "out_dtype"),
    [
        ("int8", "int8", "int8", "int8"),
        ("int8", "uint8", "uint8", "uint8"),
        ("int8", "float32", "float32", "float32"),
        ("int16x8", "int8", "int16", "int16"),
        ("float32", "int8", "float32", "float32"),
    ],
)
def test_format_runs_on_tflm_like_tflite(
    conv_model: Path, tiny_data: Path, tmp_path: Path, fmt: str, io_type: str, in_dtype: str, out_dtype: str
) -> None:
    model = convert(conv_model, tiny_data, tmp_path, fmt, io_type)
    tflm, tflite, info = tflm_vs_tflite(model, tmp_path, frames(tiny_data))
    assert info.input.dtype == in_dtype and info.output.dtype == out_dtype
    assert info.input.shape[0] == 1  # batch fixed to 1
    if out_dtype == "float32" and fmt == "float32":
        np.testing.assert_allclose(tflm, tflite, rtol=1e-4, atol=1e-4)
    elif out_dtype == "float32":
        scale = info.output.scale or np.abs(tflite).max() / 127
        assert np.max(np.abs(tflm - tflite)) <= 1.01 * max(scale, 1e-6) * 2
    else:
        assert np.max(np.abs(tflm.astype(np.int64) - tflite.astype(np.int64))) <= 1
    if fmt in ("int8", "int16x8"):
        assert "int8" in info.tensor_types  # weights are int8 in both integer schemes


def test_float16_is_refused_for_tflm(conv_model: Path, tiny_data: Path, tmp_path: Path) -> None:
    model = convert(conv_model, tiny_data, tmp_path, "float16")
    info = inspect_model(model)
    assert info.tensor_types.get("float16")
    with pytest.raises(UserError, match="float16"):
        check_tflm_ops(info)


def test_dilated_conv_batch1_has_no_space_to_batch_and_matches(
    conv_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    import keras
    import tensorflow as tf

    model = convert(conv_model, tiny_data, tmp_path, "int8")
    info = inspect_model(model)
    assert "SPACE_TO_BATCH_ND" not in info.ops and "BATCH_TO_SPACE_ND" not in info.ops
    tflm, tflite, _ = tflm_vs_tflite(model, tmp_path, frames(tiny_data, 100))
    assert np.max(np.abs(tflm.astype(int) - tflite.astype(int))) <= 1
    # The trap is real: the same model with a dynamic batch lowers the dilation to SPACE_TO_BATCH_ND.
    dynamic = tf.lite.TFLiteConverter.from_keras_model(keras.models.load_model(conv_model)).convert()
    assert "SPACE_TO_BATCH_ND" in inspect_model(dynamic).ops


def test_missing_tflm_op_is_named(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    inp = keras.Input((8,), batch_size=1)
    out = keras.layers.Dense(4)(keras.ops.power(inp, 3.0))
    model = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out)).convert()
    info = inspect_model(model)
    assert info.unsupported_ops == ["POW"]
    with pytest.raises(UserError) as err:
        check_tflm_ops(info)
    assert "POW" in err.value.message
    # ...and the TFLM runtime agrees: it cannot allocate the model.
    path = tmp_path / "pow.tflite"
    path.write_bytes(model)
    with pytest.raises(UserError, match="TFLM cannot run this model") as err:
        probe_arena(path)
    assert "builtin opcode 'POW'" in err.value.message  # the runtime's own fd-2 reason, passed on


def test_arena_probe_within_5_percent_of_smallest(conv_model: Path, tiny_data: Path, tmp_path: Path) -> None:
    from hkdeploy.tflm import probe_once

    model = convert(conv_model, tiny_data, tmp_path, "int8")
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    result = probe_arena(path)
    assert probe_once(path, result.host_min).ok
    # Anything 5 % smaller fails: the probe is within 1.05x of the smallest working arena.
    assert not probe_once(path, int(result.host_min / 1.05)).ok
    assert not probe_once(path, result.host_min - 16).ok
    assert result.board % 16 == 0 and result.board >= result.host_min + 2048

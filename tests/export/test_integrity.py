"""The three-way check tells the truth: agreement per format, float ops inside int8, shape mismatches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.config import load_params
from hkdeploy.errors import UserError
from hkdeploy.export import integrity
from tests.export.conftest import tiny_config


def pair(exact: float | None, lsb: int | None, max_abs: float = 0.0) -> dict[str, Any]:
    return {"exact_match": exact, "max_lsb": lsb, "max_abs_err": max_abs}


def test_agreement_rules_per_format() -> None:
    assert integrity.agreement("int8", pair(1.0, 0), 1.0)["status"] == "ok"
    one_lsb = integrity.agreement("int8", pair(0.99, 1, 0.004), 1.0)
    assert one_lsb["status"] == "warning" and one_lsb["name"] == "tflm_tflite_int8_lsb"
    assert "99.0% of frames, max 1 LSB" in one_lsb["message"]
    assert integrity.agreement("int8", pair(0.9, 2), 1.0)["status"] == "fail"
    assert integrity.agreement("int8", pair(0.06, 3), 1.0, float_inside=True)["status"] == "warning"
    assert integrity.agreement("int8", pair(0.06, 5), 1.0, float_inside=True)["status"] == "fail"
    warn = integrity.agreement("int16x8", pair(0.975, 3, 1e-4), 1.0)
    assert warn["status"] == "warning" and warn["name"] == "tflm_tflite_int16_lsb"
    assert "97.5%" in warn["message"] and "3 LSB" in warn["message"]
    assert integrity.agreement("int16x8", pair(0.5, 5), 1.0)["status"] == "fail"
    # float I/O around int8 internals: identical integers give identical floats
    assert integrity.agreement("int8", pair(None, None, 0.0), 1.0)["status"] == "ok"
    assert integrity.agreement("int8", pair(None, None, 0.003), 1.0)["status"] == "fail"
    assert integrity.agreement("float32", pair(None, None, 3e-6), 2.0)["status"] == "ok"
    assert integrity.agreement("float32", pair(None, None, 1e-3), 2.0)["status"] == "fail"


def test_failed_agreement_fails_the_verdict() -> None:
    verdict = {"passed": True, "message": "accuracy drops +0.0000"}
    merged = integrity.merge_verdict(verdict, integrity.agreement("int8", pair(0.9, 2), 1.0))
    assert merged["passed"] is False and merged["message"].startswith("TFLM equals TFLite")
    kept = integrity.merge_verdict(verdict, integrity.agreement("int16x8", pair(0.9, 2), 1.0))
    assert kept["passed"] is True and "warning tflm_tflite_int16_lsb" in kept["message"]


def test_label_shape_rules() -> None:
    assert integrity.check_label_shapes((4,), (300,), 4) == "frame"
    assert integrity.check_label_shapes((64, 4), (300, 64), 4) == "timestep"
    with pytest.raises(UserError) as err:
        integrity.check_label_shapes((64, 4), (300,), 4)
    assert "outputs per time step (64, 4)" in err.value.message and "(300,)" in err.value.message
    with pytest.raises(UserError, match=r"per frame \(4,\).*per time step \(300, 64\)"):
        integrity.check_label_shapes((4,), (300, 64), 4)


keras = pytest.importorskip("keras", reason="pip install tensorflow-cpu keras")


def _layernorm_model() -> Any:
    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 1))
    h = keras.layers.Conv1D(8, 3, padding="same", activation="relu")(inp)
    h = keras.layers.LayerNormalization(name="ln")(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inp, keras.layers.Dense(4)(h))


def test_float_ops_inside_int8_are_listed_with_their_layer(tmp_path: Path) -> None:
    import tensorflow as tf

    model = _layernorm_model()
    fixed = keras.Model(i := keras.Input((64, 1), batch_size=1), model(i))
    conv = tf.lite.TFLiteConverter.from_keras_model(fixed)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    x = np.random.default_rng(0).normal(size=(20, 1, 64, 1)).astype(np.float32)
    conv.representative_dataset = lambda: ([f] for f in x)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    ops = integrity.float_ops(conv.convert(), "int8", {"ln": "LayerNormalization"})
    assert ops, "LayerNormalization is expected to run in float inside an int8 model"
    assert any(f.layer == "ln (LayerNormalization)" for f in ops)
    summary = integrity.float_ops_summary(ops)
    assert summary.startswith(f"{len(ops)} float op(s) inside the quantized model")
    with pytest.raises(UserError, match=r"quantization\.fallback is false"):
        integrity.refuse_float_ops(ops, fallback=False)
    integrity.refuse_float_ops(ops, fallback=True)
    assert integrity.float_ops(b"", "float32") == []


def test_export_refuses_float_ops_without_fallback(tmp_path: Path, tiny_data: Path) -> None:
    from hkdeploy.export.api import export

    path = tmp_path / "ln.keras"
    _layernorm_model().save(path)
    cfg = tiny_config(tiny_data, path, tmp_path / "job", test_size=20)
    with pytest.raises(UserError) as err:
        export(load_params(data=cfg).params, show_progress=False)
    assert (
        "float op(s) inside the quantized model" in err.value.message
        and "ln (LayerNormalization)" in err.value.message
    )
    assert not (tmp_path / "job" / "export" / "model_buffer.h").exists()

    cfg = tiny_config(
        tiny_data,
        path,
        tmp_path / "job2",
        test_size=20,
        test_metric_threshold=None,
        quantization={"fallback": True},
    )
    result = export(load_params(data=cfg).params, show_progress=False)
    report = json.loads((result.export_dir / "export_report.json").read_text())
    assert report["float_ops"] and report["verdict"]["agreement"]["status"] in ("ok", "warning", "fail")


def test_segmentation_output_with_frame_labels_is_exit_2_before_conversion(
    tmp_path: Path, tiny_data: Path
) -> None:
    from hkdeploy.export.api import export

    inp = keras.Input((64, 1))
    model = keras.Model(inp, keras.layers.Conv1D(4, 3, padding="same")(inp))
    path = tmp_path / "seg.keras"
    model.save(path)
    cfg = tiny_config(tiny_data, path, tmp_path / "job", test_size=20)
    with pytest.raises(UserError) as err:
        export(load_params(data=cfg).params, show_progress=False)
    assert err.value.exit_code == 2
    assert "(64, 4)" in err.value.message and "(20,)" in err.value.message

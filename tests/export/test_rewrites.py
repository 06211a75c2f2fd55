"""TFLM-compatibility rewrites, ops named with their Keras layer, multi-I/O refusal, Lambda opt-in,
helia-edge / neuralspot-edge custom objects."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hkdeploy.config import load_params
from hkdeploy.errors import UserError
from tests.export.conftest import tiny_config

keras = pytest.importorskip("keras", reason="pip install tensorflow-cpu keras")

from hkdeploy.export import rewrites  # noqa: E402
from hkdeploy.export.api import export  # noqa: E402
from hkdeploy.export.load import load_keras_model  # noqa: E402


def _x(n: int = 32, t: int = 64) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(n, t, 1)).astype(np.float32)


def _upsampling_gelu_model() -> Any:
    keras.utils.set_random_seed(2)
    inp = keras.Input((64, 1))
    h = keras.layers.Conv1D(8, 5, padding="same", activation="gelu", name="conv_gelu")(inp)
    h = keras.layers.MaxPooling1D(2)(h)
    h = keras.layers.UpSampling1D(2, name="up1d")(h)
    h = keras.layers.Reshape((1, 64, 8))(h)
    h = keras.layers.MaxPooling2D((1, 4))(h)
    h = keras.layers.UpSampling2D((1, 4), name="up2d")(h)
    h = keras.layers.Reshape((64, 8))(h)
    h = keras.layers.Activation("gelu", name="act_gelu")(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inp, keras.layers.Dense(4, name="head")(h))


def test_upsampling_rewrite_is_exact_and_gelu_within_its_stated_error() -> None:
    inp = keras.Input((64, 1))
    up = keras.Model(inp, keras.layers.UpSampling1D(2)(keras.layers.MaxPooling1D(2)(inp)))
    new, (rec,) = rewrites.prepare(up, _x())
    assert rec.name == "upsampling_nearest" and rec.max_abs_diff == 0.0
    assert "UpSampling1D" not in {type(layer).__name__ for layer in new._flatten_layers()}

    inp = keras.Input((64, 1))
    gelu = keras.Model(inp, keras.layers.Activation("gelu")(keras.layers.Rescaling(3.0)(inp)))
    _, (rec,) = rewrites.prepare(gelu, _x())
    assert rec.name == "gelu_tanh"
    assert rec.max_abs_diff is not None and 1e-5 < rec.max_abs_diff <= rewrites.GELU_TANH_MAX_ERROR * 1.01


def test_gelu_tanh_bound_is_the_true_maximum() -> None:
    grid = np.linspace(-8, 8, 160001)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in grid])
    approx = np.asarray(rewrites._keras_objects()["gelu_tanh"](grid))
    err = float(np.max(np.abs(approx - exact)))
    assert abs(err - rewrites.GELU_TANH_MAX_ERROR) < 2e-6, err


def test_rewritten_model_exports_and_tflm_equals_tflite(tmp_path: Path, tiny_data: Path) -> None:
    model_path = tmp_path / "ug.keras"
    _upsampling_gelu_model().save(model_path)
    cfg = tiny_config(tiny_data, model_path, tmp_path / "job", test_metric_threshold=None, test_size=60)
    result = export(load_params(data=cfg).params, show_progress=False)
    ops = result.model_info.ops
    assert "TILE" not in ops and "GELU" not in ops
    assert ops.get("RESIZE_NEAREST_NEIGHBOR") == 2 and "TANH" in ops
    report = json.loads((result.export_dir / "export_report.json").read_text())
    names = {r["name"]: r for r in report["rewrites"]}
    assert set(names) == {"upsampling_nearest", "gelu_tanh"}
    assert names["upsampling_nearest"]["layers"] == ["up1d", "up2d"]
    assert names["upsampling_nearest"]["max_abs_diff"] == 0.0
    assert sorted(names["gelu_tanh"]["layers"]) == ["act_gelu", "conv_gelu"]
    pair = report["pairs"]["tflite_int8__tflm"]
    assert pair["exact_match"] == 1.0 and pair["max_lsb"] == 0


def test_op_without_rewrite_is_named_with_its_keras_layer() -> None:
    import tensorflow as tf

    from hkdeploy.export.inspect import inspect_model

    class OpsGelu(keras.layers.Layer):  # type: ignore[misc]
        def call(self, x: Any) -> Any:
            return keras.ops.gelu(x, approximate=False)

    inp = keras.Input((64, 1), batch_size=1)
    h = OpsGelu(name="my_gelu")(keras.layers.Conv1D(4, 3, padding="same")(inp))
    model = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Flatten()(h)))
    rewritten, records = rewrites.prepare(model, _x(4))
    assert records == []  # nothing hkdeploy knows how to rewrite
    info = inspect_model(tf.lite.TFLiteConverter.from_keras_model(rewritten).convert())
    assert info.unsupported_ops == ["GELU"]
    with pytest.raises(UserError) as err:
        rewrites.check_tflm_ops_named(info, rewritten)
    assert "GELU (from my_gelu (OpsGelu))" in err.value.message
    assert "ops.gelu" in (err.value.hint or "")


def test_multi_output_model_is_refused_in_one_line_before_conversion(tmp_path: Path, tiny_data: Path) -> None:
    inp = keras.Input((64, 1))
    flat = keras.layers.Flatten()(inp)
    model = keras.Model(inp, [keras.layers.Dense(4)(flat), keras.layers.Dense(2)(flat)])
    path = tmp_path / "two.keras"
    model.save(path)
    cfg = tiny_config(tiny_data, path, tmp_path / "job", test_size=20)
    with pytest.raises(UserError) as err:
        export(load_params(data=cfg).params, show_progress=False)
    msg = err.value.message
    assert "1 input(s) [(64, 1)] and 2 output(s) [(4,), (2,)]" in msg and "\n" not in msg


def test_lambda_needs_explicit_opt_in(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = keras.Input((64, 1))
    model = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2.0)(inp))
    path = tmp_path / "lam.keras"
    model.save(path)
    with pytest.raises(UserError) as err:
        load_keras_model(path)
    assert "Lambda" in err.value.message and "allow_unsafe_deserialization" in (err.value.hint or "")
    loaded = load_keras_model(path, allow_unsafe=True)
    assert float(np.asarray(loaded(np.ones((1, 64, 1), np.float32))).max()) == 2.0
    assert "allow_unsafe_deserialization is on" in capsys.readouterr().err


@keras.saving.register_keras_serializable(package="nse")
class FakeNseScale(keras.layers.Layer):  # type: ignore[misc]
    """Test double of a neuralspot-edge layer (registered as nse>..., like neuralspot-edge's own)."""

    def call(self, x: Any) -> Any:
        return x * 3.0


def test_helia_edge_names_load_with_neuralspot_edge_classes(tmp_path: Path) -> None:
    inp = keras.Input((64, 1))
    model = keras.Model(inp, FakeNseScale(name="scale")(inp))
    path = tmp_path / "nse.keras"
    model.save(path)
    # Re-spell the file as helia-edge (HeartKit 1.8) writes it: registered name helia_edge>...
    renamed = tmp_path / "helia.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(renamed, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                text = data.decode()
                assert "nse>FakeNseScale" in text
                data = text.replace("nse>", "helia_edge>").encode()
            dst.writestr(item, data)
    with pytest.raises(Exception):  # noqa: B017  Keras alone cannot resolve the helia_edge> name
        keras.models.load_model(renamed, compile=False)
    loaded = load_keras_model(renamed)
    x = _x(2)
    np.testing.assert_allclose(np.asarray(loaded(x)), 3.0 * x)


def test_converter_rejection_is_one_line_in_its_own_words(tmp_path: Path) -> None:
    stderr = (
        "Traceback (most recent call last):\n  File ...\n"
        '<unknown>:0: error: loc(callsite(fused["BiasAdd:", "functional_1_1/functional_1/BiasAdd@__inference_f_649"] '
        'at callsite(fused["StatefulPartitionedCall:", "x@y"] at fused["StatefulPartitionedCall:", "S_1"]))): '
        "'tf.Transpose' op x should be of the same rank with y, got x of rank 3, and y of rank 4\n"
        '<unknown>:0: note: loc(fused["StatefulPartitionedCall:", "S_1"]): called from\n'
    )
    path = tmp_path / "convert_stderr.txt"
    path.write_text(stderr)
    raw = UserError("the TFLite converter rejected the model (int8): <unknown>:0: note: loc(...)", hint="h")
    exc = rewrites.explain_conversion_error(raw, path, "int8")
    assert exc.message == (
        "the TFLite converter rejected the model (int8): 'tf.Transpose' op x should be of the same rank with y, "
        "got x of rank 3, and y of rank 4 (at functional_1_1/functional_1/BiasAdd)"
    )
    assert "TSMixer" in (exc.hint or "")
    path.write_text("no mlir here\n")
    assert rewrites.explain_conversion_error(raw, path, "int8") is raw


def test_lambda_model_exports_only_with_the_opt_in(tmp_path: Path, tiny_data: Path) -> None:
    keras.utils.set_random_seed(5)
    inp = keras.Input((64, 1))
    h = keras.layers.Lambda(lambda t: t * 0.5, name="halve")(inp)
    model = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Flatten()(h)))
    path = tmp_path / "lam.keras"
    model.save(path)
    cfg = tiny_config(tiny_data, path, tmp_path / "job", test_size=20, test_metric_threshold=None)
    with pytest.raises(UserError) as err:
        export(load_params(data=cfg).params, show_progress=False)
    assert "Lambda" in err.value.message and "allow_unsafe_deserialization" in (err.value.hint or "")
    cfg["allow_unsafe_deserialization"] = True
    result = export(load_params(data=cfg).params, show_progress=False)
    assert result.passed and result.report["verdict"]["agreement"]["status"] in ("ok", "warning")
    assert (result.export_dir / "model_buffer.h").exists()

"""QAT: recovers a PTQ accuracy drop, folds BatchNorm, and its trained ranges reach the int8 file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hkdeploy.config import load_params
from tests.export.conftest import tiny_config

pytestmark = pytest.mark.slow  # converts with TensorFlow


@pytest.fixture(scope="module")
def spiky(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> tuple[Path, Path]:
    """Data with rare artifact spikes, and a float model trained on it.

    2 % of the frames carry one sample 300x larger than the signal (an electrode artifact). The
    calibrated int8 input range is set by those spikes, so PTQ quantizes ordinary frames with ~1/300 of
    their resolution and loses accuracy; QAT can learn to clip the rare spikes instead.
    """
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(5)
    with np.load(tiny_data) as d:
        x, y = d["x"].copy(), d["y"]
    idx = rng.choice(len(x), size=len(x) // 50, replace=False)
    x[idx, rng.integers(0, x.shape[1], size=len(idx)), 0] = 300.0 * rng.choice([-1.0, 1.0], size=len(idx))
    folder = tmp_path_factory.mktemp("spiky")
    np.savez(folder / "spiky.npz", x=x, y=y, patient_ids=np.arange(len(x)))
    inp = keras.Input((64, 1))
    h = keras.layers.Reshape((64,))(inp)
    h = keras.layers.Dense(32, activation="relu")(h)
    out = keras.layers.Dense(4)(h)
    model = keras.Model(inp, out)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x[:2400], y[:2400], epochs=15, batch_size=64, verbose=0)
    model.save(folder / "spiky.keras")
    return folder / "spiky.npz", folder / "spiky.keras"


def test_qat_recovers_at_least_half_of_the_ptq_drop(spiky: tuple[Path, Path], tmp_path: Path) -> None:
    from hkdeploy.export import export

    data, model = spiky
    cfg = tiny_config(
        data,
        model,
        tmp_path / "job",
        test_size=400,
        test_metric_threshold=None,
        quantization={"qat": True, "qat_epochs": 6, "qat_lr_rate": 0.01, "qat_train_size": 2000},
    )
    result = export(load_params(data=cfg).params, show_progress=False)
    qat = result.report["qat"]
    drop = qat["float_acc"] - qat["ptq_int8_acc"]
    assert drop >= 0.05, f"the model must lose accuracy under PTQ for this test to mean anything: {qat}"
    recovered = qat["qat_int8_acc"] - qat["ptq_int8_acc"]
    print(f"QAT figures: {qat}")
    assert recovered >= 0.5 * drop, qat
    # the three accuracies are reported side by side, the TFLM leg is the QAT int8 model
    assert result.report["metrics"]["tflm"]["accuracy"] == pytest.approx(qat["qat_int8_acc"])


def test_qat_folds_bn_and_int8_file_carries_trained_ranges(
    conv_model: Path, tiny_data: Path, tmp_path: Path
) -> None:
    import keras

    from hkdeploy.export.convert import ConvertSpec, convert_in_subprocess
    from hkdeploy.export.inspect import inspect_model
    from hkdeploy.export.qat import ActivationFakeQuant, build_qat_model, trained_ranges

    model = keras.models.load_model(conv_model)
    with np.load(tiny_data) as d:
        x, y = d["x"], d["y"]
    qat, init_ranges = build_qat_model(model, x[:200])
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in qat.layers)
    # folding preserves the float function up to quantization noise
    ref = np.asarray(model(x[:50]))
    got = np.asarray(qat(x[:50]))
    assert np.corrcoef(ref.ravel(), got.ravel())[0, 1] > 0.99
    qat.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    qat.fit(x[:1000], y[:1000], epochs=1, batch_size=64, verbose=0)
    ranges = trained_ranges(qat)
    assert set(init_ranges) < set(ranges)  # plus the model input's own range
    assert any(abs(ranges[k][1] - init_ranges[k][1]) > 1e-3 for k in init_ranges), (
        "ranges should have trained"
    )

    qat.save(tmp_path / "qat.keras")
    np.savez(tmp_path / "calib.npz", x=x[:100])
    spec = ConvertSpec(
        str(tmp_path / "qat.keras"),
        str(tmp_path / "qat.tflite"),
        "int8",
        "int8",
        False,
        "keras",
        str(tmp_path / "calib.npz"),
        True,
    )
    tflite = convert_in_subprocess(spec, tmp_path, [])
    info = inspect_model(tflite)
    # The logits tensor (output of the last Dense) carries the trained range of its fake-quant layer.
    dense = next(layer.name for layer in qat.layers if isinstance(layer, keras.layers.Dense))
    lo, hi = ranges[dense]
    expected_scale = (hi - lo) / 255.0
    assert info.output.scale == pytest.approx(expected_scale, rel=0.02), (info.output, lo, hi)
    assert any(isinstance(layer, ActivationFakeQuant) for layer in qat.layers)

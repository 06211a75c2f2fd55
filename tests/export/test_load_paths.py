"""model_file may be .keras, .h5 or a SavedModel folder; a missing or unsupported file is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from hkdeploy.config import load_params
from hkdeploy.errors import UserError
from tests.export.conftest import tiny_config

pytestmark = pytest.mark.slow  # converts with TensorFlow


@pytest.mark.parametrize("kind", ["h5", "saved_model"])
def test_h5_and_saved_model_export_end_to_end(
    conv_model: Path, tiny_data: Path, tmp_path: Path, kind: str
) -> None:
    import keras

    from hkdeploy.export import export

    model = keras.models.load_model(conv_model)
    if kind == "h5":
        path = tmp_path / "model.h5"
        model.save(path)
    else:
        path = tmp_path / "saved"
        model.export(path, format="tf_saved_model", verbose=False)
    cfg = tiny_config(tiny_data, path, tmp_path / "job", test_size=100, test_metric_threshold=None)
    result = export(load_params(data=cfg).params, show_progress=False)
    assert result.model_info.input.shape == [1, 64, 1]
    assert (result.export_dir / "model_buffer.h").is_file()
    assert result.report["pairs"]["tflite_int8__tflm"]["max_lsb"] == 0


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.keras", None, "does not exist"),
        ("model.onnx", b"x", "unsupported type '.onnx'"),
        ("broken.keras", b"not a zip", "not a Keras .keras archive"),
    ],
)
def test_bad_model_files(tmp_path: Path, name: str, content: bytes | None, fragment: str) -> None:
    from hkdeploy.export.load import load_keras_model

    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError) as err:
        load_keras_model(path)
    assert fragment in err.value.message and err.value.hint

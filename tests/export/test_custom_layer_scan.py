"""neuralspot-edge (and tf_keras under it) is imported only for models whose config names it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from hkdeploy.export.load import needs_custom_layers

REPO = Path(__file__).resolve().parents[2]


def _keras_file(path: Path, config: dict[str, Any]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", "{}")
    return path


def _layer(module: str, name: str) -> dict[str, Any]:
    return {"module": module, "class_name": name, "config": {"name": name.lower()}, "registered_name": None}


def test_the_demo_model_needs_no_custom_layers() -> None:
    assert needs_custom_layers(REPO / "examples" / "demo_model.keras") is False


def test_a_layer_from_another_package_needs_them(tmp_path: Path) -> None:
    plain = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {"layers": [_layer("keras.layers", "Conv1D"), _layer("hkdeploy.export.qat", "QConv1D")]},
    }
    assert needs_custom_layers(_keras_file(tmp_path / "plain.keras", plain)) is False
    custom = json.loads(json.dumps(plain))
    custom["config"]["layers"].append(_layer("neuralspot_edge.layers.squeeze_excite", "SqueezeExcite"))
    assert needs_custom_layers(_keras_file(tmp_path / "custom.keras", custom)) is True


def test_formats_that_cannot_be_read_without_tensorflow_import_them(tmp_path: Path) -> None:
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    (tmp_path / "saved").mkdir()
    (tmp_path / "broken.keras").write_text("not a zip")
    assert needs_custom_layers(tmp_path / "m.h5") is True
    assert needs_custom_layers(tmp_path / "saved") is True
    assert needs_custom_layers(tmp_path / "broken.keras") is True

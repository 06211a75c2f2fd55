"""The real export of the bundled demo: artifacts, header contents and compilation, report, replay."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def header_bytes(text: str, var: str) -> bytes:
    """Parse the C array back out of model_buffer.h."""
    body = re.search(rf"const unsigned char {var}\[\] = \{{(.*?)\}};", text, re.S)
    assert body, "array not found"
    return bytes(int(tok, 16) for tok in re.findall(r"0x([0-9a-f]{2})", body.group(1)))


def test_all_artifacts_written(exported_demo: Any) -> None:
    from hkdeploy.export import ARTIFACTS

    for name in ARTIFACTS:
        path = exported_demo.export_dir / name
        assert path.is_file() and path.stat().st_size > 0, name
    assert not list(exported_demo.export_dir.glob(".export-*")), "staging folder left behind"


def test_header_holds_exactly_the_model(exported_demo: Any) -> None:
    d = exported_demo.export_dir
    model = (d / "model.tflite").read_bytes()
    text = (d / "model_buffer.h").read_text()
    assert header_bytes(text, "g_demo_model") == model
    assert f"const unsigned int g_demo_model_len = {len(model)}u;" in text
    assert "alignas(16) const unsigned char g_demo_model[]" in text
    assert "#ifndef G_DEMO_MODEL_BUFFER_H" in text and "#define __" not in text
    import hashlib

    assert hashlib.sha256(model).hexdigest() in text
    raw = (d / "model_buffer.h").read_bytes()
    assert b"\r\n" not in raw and raw.endswith(b"\n")
    assert not re.search(rb"20\d\d-\d\d-\d\d", raw), "no dates in generated files"


def test_ops_header_lists_exactly_the_model_ops(exported_demo: Any) -> None:
    text = (exported_demo.export_dir / "model_ops.h").read_text()
    ops = exported_demo.model_info.ops
    assert f"#define HK_MODEL_OP_COUNT {len(ops)}" in text
    # the demo model's ops, from reading its graph (Conv1D lowers to CONV_2D, pooling to MAX_POOL_2D ...)
    assert set(ops) == {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MAX_POOL_2D",
        "MEAN",
        "RESHAPE",
        "SOFTMAX",
    }
    for method in (
        "AddConv2D",
        "AddDepthwiseConv2D",
        "AddFullyConnected",
        "AddMaxPool2D",
        "AddMean",
        "AddReshape",
        "AddSoftmax",
    ):
        assert f"resolver.{method}()" in text
    assert text.count("resolver.Add") == len(ops)


def test_config_header_facts(exported_demo: Any) -> None:
    text = (exported_demo.export_dir / "model_config.h").read_text()
    info, arena = exported_demo.model_info, exported_demo.arena
    assert f"#define HK_MODEL_ARENA_SIZE {arena.board}u" in text and arena.board % 16 == 0
    assert "#define HK_MODEL_INPUT_DIMS { 1, 1250, 1 }" in text
    assert "#define HK_MODEL_INPUT_DTYPE 9" in text  # int8
    assert f"#define HK_MODEL_INPUT_ZERO_POINT ({info.input.zero_point})" in text
    assert '#define HK_MODEL_CLASS_NAMES { "NSR", "SBRAD", "STACH", "AFIB" }' in text
    sha = re.search(r"HK_MODEL_SHA256_BYTES \{ (.*) \}", text)
    assert sha and bytes(int(t, 16) for t in sha.group(1).split(", ")).hex() == info.sha256


def _compile(tmp_path: Path, compiler: list[str], source: str, suffix: str) -> None:
    src = tmp_path / f"t{suffix}"
    src.write_text(source)
    proc = subprocess.run(
        [*compiler, "-c", str(src), "-o", str(tmp_path / "t.o")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


USE_HEADERS = """#include "model_buffer.h"
#include "model_config.h"
static const unsigned char sha[] = HK_MODEL_SHA256_BYTES;
static const int dims[] = HK_MODEL_INPUT_DIMS;
int use(void) { return (int)(HK_MODEL_LEN + sha[0] + dims[1] + HK_MODEL_ARENA_SIZE) + HK_MODEL_DATA[4]; }
"""


@pytest.mark.parametrize(
    ("compiler", "suffix"),
    [
        (["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"], ".c"),
        (["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror"], ".cc"),
        (
            [
                "arm-none-eabi-gcc",
                "-std=c11",
                "-mcpu=cortex-m4",
                "-mthumb",
                "-mfloat-abi=hard",
                "-mfpu=fpv4-sp-d16",
                "-Wall",
                "-Wextra",
                "-Werror",
            ],
            ".c",
        ),
        (
            [
                "arm-none-eabi-g++",
                "-std=c++17",
                "-mcpu=cortex-m55",
                "-mthumb",
                "-fno-exceptions",
                "-fno-rtti",
                "-Wall",
                "-Wextra",
                "-Werror",
            ],
            ".cc",
        ),
    ],
)
def test_headers_compile(exported_demo: Any, tmp_path: Path, compiler: list[str], suffix: str) -> None:
    if shutil.which(compiler[0]) is None:
        if compiler[0].startswith("arm-none-eabi") and __import__("os").environ.get("CI"):
            pytest.fail(f"{compiler[0]} must be installed in CI (.ci/run installs gcc-arm-none-eabi)")
        pytest.skip(f"{compiler[0]} not installed")
    _compile(tmp_path, [*compiler, f"-I{exported_demo.export_dir}"], USE_HEADERS, suffix)


def test_report_json_and_html(exported_demo: Any) -> None:
    d = exported_demo.export_dir
    report = json.loads((d / "export_report.json").read_text())
    for key in ("schema", "model", "arena", "board_fit", "metrics", "pairs", "verdict", "timings_s"):
        assert key in report
    assert set(report["metrics"]) == {"keras_float", "tflite_int8", "tflm"}
    pair = report["pairs"]["tflite_int8__tflm"]
    assert pair["exact_match"] == 1.0 and pair["max_lsb"] == 0  # TFLite reference kernels == TFLM
    assert report["verdict"]["passed"] is True and report["board_fit"]["board"] == "apollo4p_evb"
    html = (d / "report.html").read_text()
    for section in (
        "Verdict",
        "Model",
        "Arena and board fit",
        "Metrics",
        "Confusion matrices",
        "Per-class metrics",
        "Output error",
    ):
        assert f">{section}</h2>" in html, section
    assert html.count("data:image/png;base64,") >= 5


def test_saved_test_data_replays_on_tflm(exported_demo: Any) -> None:
    from hkdeploy.tflm import TflmRunner

    d = exported_demo.export_dir
    with np.load(d / "test_data.npz") as data:
        raw, tflm, y = data["input_raw"], data["tflm"], data["y"]
    runner = TflmRunner((d / "model.tflite").read_bytes(), exported_demo.arena.board)
    np.testing.assert_array_equal(runner.run_many(raw[:50]), tflm[:50])
    assert len(y) == len(raw) == 200

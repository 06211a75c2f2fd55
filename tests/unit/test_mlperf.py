"""hkdeploy.mlperf without a device: result text, the runner's dataset and devices files, the config
fields, the DUT build's command lines, and the CLI's errors. Expected files are written by hand from
the runner's formats (mlcommons/tiny benchmark/runner: datasets.py, devices_*.yaml)."""

from __future__ import annotations

import csv
import json
import os
import pty
from pathlib import Path

import numpy as np
import pytest
import yaml

from hkdeploy.cli import main
from hkdeploy.config import load_params
from hkdeploy.config.params import DeployParams
from hkdeploy.errors import ConfigError, UserError
from hkdeploy.mlperf import dequantize, format_result, runner_baud
from hkdeploy.mlperf.dataset import write_dataset
from hkdeploy.mlperf.devices import device_entry, render_devices, write_devices

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "demo.json"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.000000"),  # the reference port's th_results printed this as 0.1000
        (0.1, "0.100000"),
        (-0.5, "-0.500000"),
        (0.0078125, "0.007812"),  # an exact tie: half to even
        (0.0234375, "0.023438"),
        (123.456, "123.456001"),  # the float32 nearest 123.456
        (-0.0, "0.000000"),
        (255 / 256, "0.996094"),
    ],
)
def test_format_result_is_what_the_firmware_prints(value: float, text: str) -> None:
    assert format_result(value) == text


def test_dequantize_in_float32() -> None:
    out = dequantize(np.array([[-128, 127, 0]], np.int8), 0.00390625, -128)
    assert out.dtype == np.float32 and out.tolist() == [[0.0, 0.99609375, 0.5]]


def test_runner_baud() -> None:
    assert runner_baud("kws01") == {"energy": 9600, "performance": 115200, "accuracy": 115200}
    assert runner_baud("ad01") == {"energy": 9600, "performance": 921600, "accuracy": 921600}


def _fake_export(job: Path, n: int = 3, input_bytes: int = 4) -> np.ndarray:
    export = job / "export"
    export.mkdir(parents=True)
    report = {"model": {"input": {"bytes": input_bytes}, "output": {"scale": 0.5, "zero_point": 0}}}
    (export / "export_report.json").write_text(json.dumps(report))
    raw = (np.arange(n * input_bytes, dtype=np.int16) - 5).astype(np.int8).reshape(n, input_bytes, 1)
    np.savez(
        export / "test_data.npz", input_raw=raw, y=np.array([2, 0, 3][:n]), tflm=np.zeros((n, 4), np.int8)
    )
    return raw


def test_dataset_folder_in_the_runners_format(tmp_path: Path) -> None:
    job = tmp_path / "job"
    raw = _fake_export(job)
    params = load_params(DEMO, ["mlperf.model_id=kws01"], job_dir=job).params
    res = write_dataset(params, tmp_path / "datasets")
    folder = tmp_path / "datasets" / "kws01"
    assert res.folder == folder and res.files == 3 and res.input_bytes == 4
    assert (folder / "y_labels.csv").read_bytes() == (
        b"kws01_00000.bin,4,2\nkws01_00001.bin,4,0\nkws01_00002.bin,4,3\n"
    )
    assert (folder / "kws01_00000.bin").read_bytes() == bytes([0xFB, 0xFC, 0xFD, 0xFE])
    assert (folder / "kws01_00002.bin").read_bytes() == raw[2].tobytes()
    # read back the way the runner's DataSet does (no header row, fixed field names)
    with open(folder / "y_labels.csv") as fh:
        rows = list(csv.DictReader(fh, fieldnames=["file", "classes", "class", "bytes_to_send", "stride"]))
    assert [r["file"] for r in rows] == ["kws01_00000.bin", "kws01_00001.bin", "kws01_00002.bin"]
    assert [int(r["class"]) for r in rows] == [2, 0, 3] and rows[0]["bytes_to_send"] is None


def test_dataset_ad01_rows_carry_window_and_stride(tmp_path: Path) -> None:
    job = tmp_path / "job"
    _fake_export(job, n=2)
    params = load_params(DEMO, ["mlperf.model_id=ad01"], job_dir=job).params
    write_dataset(params, tmp_path / "ds", count=1)
    assert (tmp_path / "ds" / "ad01" / "y_labels.csv").read_text() == "ad01_00000.bin,2,2,4,4\n"
    assert not (tmp_path / "ds" / "ad01" / "ad01_00001.bin").exists()


def test_dataset_without_export_names_the_fix(tmp_path: Path) -> None:
    params = load_params(DEMO, job_dir=tmp_path).params
    with pytest.raises(UserError, match="no export") as exc:
        write_dataset(params, tmp_path / "ds")
    assert "hkdeploy export" in (exc.value.hint or "")


def test_devices_entry_as_the_runner_reads_it(tmp_path: Path) -> None:
    path = write_devices(tmp_path / "devices.yaml", "hkdeploy-kws01", "kws01", 0x1366, 0x1015)
    assert path.read_text() == (
        "- name: hkdeploy-kws01\n"
        "  type: dut\n"
        "  check_name: hkdeploy-kws01\n"
        "  baud:\n"
        "    energy: 9600\n"
        "    performance: 115200\n"
        "    accuracy: 115200\n"
        "  usb:\n"
        "    0x1366: 0x1015\n"
    )
    (dev,) = yaml.safe_load(path.read_text())
    assert dev["usb"] == {0x1366: 0x1015} and dev["type"] == "dut"  # YAML 1.1 reads 0x.. as ints
    assert yaml.safe_load(render_devices([device_entry("x", "ad01", 1, 2)]))[0]["baud"]["accuracy"] == 921600


def test_config_fields() -> None:
    params = load_params(DEMO).params
    assert params.mlperf.model_id == "custom" and params.mlperf.dut_name() == "hkdeploy-custom"
    params = load_params(DEMO, ["mlperf.model_id=vww01"]).params
    assert params.mlperf.dut_name() == "hkdeploy-vww01"
    with pytest.raises(ConfigError):
        load_params(DEMO, ["mlperf.model_id=kws02"])
    with pytest.raises(ConfigError):
        load_params(DEMO, ["mlperf.name=bad]name"])  # would break m-name-dut-[...]


def _board_params(tmp_path: Path, *overrides: str) -> DeployParams:
    job = tmp_path / "job"
    (job / "export").mkdir(parents=True)
    for name in ("model_buffer.h", "model_ops.h", "model_config.h"):
        (job / "export" / name).write_text(f"/* {name} */\n")
    tensor = {"dtype": "int8", "shape": [1, 4], "bytes": 4}
    report = {
        "schema": "hkdeploy.export_report/1",
        "name": "t",
        "model": {"sha256": "ab" * 32, "size": 100, "input": tensor, "output": tensor},
        "arena": {"host_min": 1000, "board": 2048},
    }
    (job / "export" / "export_report.json").write_text(json.dumps(report))
    return load_params(DEMO, list(overrides), job_dir=job).params


def test_build_app_mlperf_dry_run_for_a_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hkdeploy.firmware.build import build

    params = _board_params(tmp_path, "mlperf.model_id=ad01", "backend=evb")
    res = build(params, "apollo4p_evb", dry_run=True, app="mlperf")
    assert res.out_dir == params.firmware_dir / "apollo4p_evb-mlperf"
    assert res.manifest["app"] == "mlperf" and res.manifest["mlperf"]["name"] == "hkdeploy-ad01"
    line = [ln for ln in capsys.readouterr().err.splitlines() if "make -C" in ln][-1]
    assert "HK_LINK=uart" in line and "HK_LINK=usb" not in line  # the DUT is always on the UART
    for var in ("HK_APP=mlperf", "HK_DUT_NAME=hkdeploy-ad01", "HK_DUT_MODEL_ID=ad01", "HK_DUT_ENERGY=0",
                "HK_DUT_BAUD=921600"):  # fmt: skip
        assert var in line.split()


def test_build_energy_mode_needs_the_boards_timestamp_pin(tmp_path: Path) -> None:
    from hkdeploy.firmware.build import build

    params = _board_params(tmp_path, "mlperf.energy=true", "backend=evb")
    with pytest.raises(UserError, match="timestamp GPIO") as exc:
        build(params, "apollo4p_evb", dry_run=True, app="mlperf")
    assert "mlperf_timestamp_pin" in (exc.value.hint or "")


def test_cli_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d.yaml"
    args = ["mlperf", "devices", "-c", str(DEMO), "--job-dir", str(tmp_path), "--set", "mlperf.model_id=ic01"]
    assert main([*args, "--vid", "0x1366", "--pid", "0x1015", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text())[0]["check_name"] == "hkdeploy-ic01"
    capsys.readouterr()
    assert main(args) == 2
    assert "give the DUT's --port, or --vid and --pid" in capsys.readouterr().err
    master, slave = pty.openpty()  # a pty has no USB ids: the runner could not find it
    try:
        assert main([*args, "--port", os.ttyname(slave)]) == 2
        assert "not a USB serial port" in capsys.readouterr().err
    finally:
        os.close(master)
        os.close(slave)


def test_flash_app_mlperf_refuses_a_missing_dut_build(tmp_path: Path) -> None:
    from hkdeploy.flash import flash

    params = _board_params(tmp_path, "backend=evb")
    with pytest.raises(UserError, match="refusing to use the MLPerf DUT image for apollo4p_evb") as exc:
        flash(params, "apollo4p_evb", dry_run=True, app="mlperf")
    assert "hkdeploy build --app mlperf" in (exc.value.hint or "")

"""Opt-in: the board arena sized from the 32-bit target (issue 11, hkdeploy.platforms.arena32).

With the upstream TFLM trees, the demo model's smallest arena is measured on the board firmware in
QEMU (qemu_m4, qemu_m55); this test checks the figure with its own builds (the figure allocates, 16 B
less does not and reports at least the figure as needed); ``hkdeploy export`` with
``firmware.arena_target`` records it and sizes the board arena from it (1.0 < board / 32-bit <= 1.10,
host figure beside it), and the virtual EVB still runs that export (its runtime keeps the host
minimum). Without the trees the export warns and keeps the host-based margin (needs no trees).

Needs HK_TFLM_ROOT / HK_TFLM_DOWNLOADS (docs/tflm.md), arm-none-eabi-gcc + newlib, qemu-system-arm.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hkdeploy.config import load_params
from hkdeploy.platforms import tflm_lib
from hkdeploy.tflm import board_arena_size
from tests.platform.qemu_support import TREES, needs_arm_cxx_and_qemu, needs_tflm_trees

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "demo.json"
_SKIPS = [needs_tflm_trees, needs_arm_cxx_and_qemu]


def needs_trees(f: Any) -> Any:
    for mark in _SKIPS:
        f = mark(f)
    return f


def _params(job: Path, **firmware: Any):
    sets = [f"firmware.{k}={v}" for k, v in firmware.items()]
    return load_params(CONFIG, overrides=sets, job_dir=job).params


def _hello(elf: Path, machine: str) -> Any:
    from hkdeploy.link.client import DeviceClient, Timeouts
    from hkdeploy.platforms.qemu_process import QemuBoard

    with (
        QemuBoard(elf, machine) as qb,
        DeviceClient(qb.url, timeouts=Timeouts(packet=2.0, command=60.0)) as dev,
    ):
        return dev.hello()


@pytest.mark.parametrize(("target", "core", "machine"), [("qemu_m4", "cortex-m4", "mps2-an386"), ("qemu_m55", "cortex-m55", "mps3-an547")])  # fmt: skip
@needs_trees
def test_measured_minimum_is_the_boundary(
    exported_demo: Any, tmp_path: Path, target: str, core: str, machine: str
) -> None:
    from hkdeploy.platforms.arena32 import measure
    from hkdeploy.platforms.qemu_build import build_qemu_firmware

    export_dir = Path(exported_demo.export_dir)
    params = _params(tmp_path / "job")
    ops = tflm_lib.export_ops(export_dir)
    got = measure(params, export_dir, ops, target, tmp_path / "work")
    assert (
        got.bytes % 16 == 0
        and got.bytes - 16 < got.arena_used <= got.bytes
        and got.fails_at == got.bytes - 16
    )
    assert got.core == core and got.kernels == "cmsis_nn" and got.builds == 3
    # checked with this test's own builds
    lib = tflm_lib.build_library(TREES, core, "cmsis_nn", ops=ops)
    eb = tflm_lib.engine_build(lib, export_dir)
    for arena, allocates in ((got.bytes, True), (got.bytes - 16, False)):
        elf = tmp_path / f"check{arena}.elf"
        build_qemu_firmware(
            machine,
            eb.sources,
            elf,
            include_dirs=eb.include_dirs,
            system_include_dirs=eb.system_include_dirs,
            defines={**eb.defines, "HK_ARENA_SIZE": arena},
            libs=eb.libs,
            build_id="test-arena32",
            log=tmp_path / "commands.log",
        )
        info = _hello(elf, machine)
        assert info.arena_size == arena and (info.alloc_status == 0) is allocates, (arena, info.alloc_status)
        if not allocates:
            assert info.arena_used >= got.bytes, "on failure HELLO reports at least the bytes needed"
    assert got.bytes < exported_demo.arena.host_min  # the host (64-bit) figure is larger


@needs_trees
def test_export_sizes_the_board_arena_from_the_32_bit_target(tmp_path: Path) -> None:
    from hkdeploy.export import export
    from hkdeploy.export.target32 import board_arena_from_target32
    from hkdeploy.link.client import DeviceClient, Timeouts
    from hkdeploy.platforms.host import build_virtual_evb
    from hkdeploy.platforms.host_process import HostPort

    params = _params(tmp_path / "job", arena_target="auto")  # apollo4p_evb: Cortex-M4 -> qemu_m4
    result = export(params, show_progress=False)
    report = json.loads((result.export_dir / "export_report.json").read_text())
    a = report["arena"]
    t32 = a["target32"]
    assert t32["board"] == "qemu_m4" and t32["kernels"] == "cmsis_nn" and t32["fails_at"] == t32["bytes"] - 16
    assert a["board"] == board_arena_from_target32(t32["bytes"]) and 1.0 < a["board"] / t32["bytes"] <= 1.10
    assert a["host_min"] > t32["bytes"] and t32["host_based_board"] == board_arena_size(a["host_min"])
    assert report["board_fit"]["arena_bytes"] == a["board"]
    config = (result.export_dir / "model_config.h").read_text()
    assert f"#define HK_MODEL_ARENA_SIZE {a['board']}u" in config
    assert f"#define HK_MODEL_ARENA_MIN32 {t32['bytes']}u" in config
    assert "32-bit minimum" in (result.export_dir / "report.html").read_text()
    # the virtual EVB runs it although the board arena is below the host minimum
    binary = build_virtual_evb(result.export_dir, tmp_path / "evb")
    with HostPort(binary, "sim:apollo4p_evb", 0, 0, log_path=tmp_path / "hp.log") as hp:
        with DeviceClient(hp.url, timeouts=Timeouts(packet=2.0, command=20.0)) as dev:
            info = dev.hello()
    assert info.alloc_status == 0 and info.arena_size == a["board"] and info.arena_used == t32["bytes"]


def test_export_without_trees_warns_and_keeps_the_host_margin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hkdeploy.export import export

    empty = tmp_path / "no-tflm"
    empty.mkdir()
    params = _params(tmp_path / "job", arena_target="qemu_m4", tflm_root=empty, tflm_downloads=empty)
    result = export(params, show_progress=False)
    a = json.loads((result.export_dir / "export_report.json").read_text())["arena"]
    assert a["target32"] is None and a["board"] == board_arena_size(a["host_min"])
    said = capsys.readouterr()
    text = " ".join((said.err + said.out).split())  # the console wraps long lines
    assert text.count("warning: arena not measured on qemu_m4") == 1, text[-2000:]
    assert "HK_MODEL_ARENA_MIN32" not in (result.export_dir / "model_config.h").read_text()

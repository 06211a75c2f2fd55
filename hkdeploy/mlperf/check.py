"""``hkdeploy mlperf check``: drive a DUT as the runner does and compare its results with the golden.

The session follows the runner: open the port, ``name`` and ``profile`` (identification), close and
reopen it, then per input ``db load`` + ``db <hex>`` in 31-byte chunks + ``infer 1 0`` (accuracy
mode) and one ``infer N W`` (performance mode). Every printed result must equal the TFLM golden of the
export (``test_data.npz`` ``tflm``) dequantized and formatted as the firmware does, character for
character. The report goes to ``job_dir/mlperf/check.json`` with the session's transcript next to it.
No TensorFlow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hkdeploy.config.params import DeployParams
from hkdeploy.console import info
from hkdeploy.errors import CheckFailed, UserError
from hkdeploy.fsutil import write_json, write_text
from hkdeploy.mlperf import PROFILE, dequantize, format_result, runner_baud
from hkdeploy.mlperf.client import DutClient
from hkdeploy.mlperf.dataset import load_export
from hkdeploy.platforms import platform_of, target_board


@dataclass
class CheckResult:
    summary: dict[str, Any]
    passed: bool
    out_dir: Path


def golden_strings(report: dict[str, Any], tflm_raw: np.ndarray) -> list[list[str]]:
    """The golden outputs as the DUT must print them, per input."""
    out = report["model"]["output"]
    values = dequantize(tflm_raw.reshape(len(tflm_raw), -1), float(out["scale"]), int(out["zero_point"]))
    return [[format_result(v) for v in row] for row in values]


@contextlib.contextmanager
def _device(
    params: DeployParams, port: str | None, board_name: str | None = None
) -> Iterator[tuple[str, int]]:
    """(url, baud): the given port; else the virtual EVB's DUT (built when stale, always stopped) or
    the board's port found by its USB ids."""
    baud = runner_baud(params.mlperf.model_id)["energy" if params.mlperf.energy else "performance"]
    if port is not None:
        yield port, baud
        return
    board = target_board(params, board_name)
    platform = platform_of(board)
    if platform.name == "host":
        from hkdeploy.mlperf.build import ensure_dut_sim
        from hkdeploy.platforms.host_process import HostPort

        binary = ensure_dut_sim(params)
        limits = platform.limits(params, board)
        log_dir = params.job_dir / "mlperf"
        log_dir.mkdir(parents=True, exist_ok=True)
        with HostPort(
            binary,
            f"sim:{limits.name}",
            limits.app_bytes,
            limits.sram_bytes,
            log_path=log_dir / "dut_host.log",
        ) as hp:
            yield hp.url, baud
        return
    if platform.name == "qemu":
        from hkdeploy.mlperf.build import ensure_dut
        from hkdeploy.platforms.qemu_process import QemuBoard

        elf = ensure_dut(params, board)
        log_dir = params.job_dir / "mlperf"
        log_dir.mkdir(parents=True, exist_ok=True)
        with QemuBoard(elf, board.qemu_machine or "", log_path=log_dir / "dut_qemu.log") as qb:
            yield qb.url, baud
        return
    if platform.name != "neuralspot":
        raise UserError(
            f"no MLPerf DUT for {board.name} (platform {platform.name})",
            hint="check the virtual EVB (backend sim) or a neuralSPOT board flashed with `hkdeploy flash --app mlperf`",
        )
    from hkdeploy.link.discovery import find_port

    found = find_port(
        params.link.port,
        params.link.usb_vid or board.usb_vid,
        params.link.usb_pid or board.usb_pid,
        params.link.serial_number,
    )
    yield found, baud


def check(
    params: DeployParams,
    port: str | None = None,
    count: int | None = None,
    iterations: int = 10,
    warmups: int = 2,
    board_name: str | None = None,
) -> CheckResult:
    """Run the session (see the module doc); raises CheckFailed when anything differs.

    Raises:
        UserError: no export. DeviceError: no reply / a refused command. CheckFailed: a mismatch.
    """
    report, data = load_export(params)
    raw, golden_raw = data["input_raw"], data["tflm"]
    n = min(len(raw), count or params.mlperf.check_size)
    golden = golden_strings(report, golden_raw[:n])
    want_name, want_model = params.mlperf.dut_name(), params.mlperf.model_id
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    out_dir = params.job_dir / "mlperf"
    transcript: list[tuple[str, str]] = []
    with _device(params, port, board_name) as (url, baud):
        with DutClient(url, baud) as dut:  # identification, as the runner's first connection
            dut.sync()
            name = dut.name()
            profile, model = dut.profile()
            transcript += dut.transcript
        if name != want_name:
            problems.append(f"name {name!r}, the config says {want_name!r}")
        if model != want_model:
            problems.append(f"model {model!r}, the config says {want_model!r}")
        if profile != PROFILE:
            problems.append(f"profile {profile!r}, the runner's is {PROFILE!r}")
        with DutClient(url, baud) as dut:  # the test script, on a reopened port
            dut.sync()
            for i in range(n):
                dut.load(np.ascontiguousarray(raw[i]).tobytes())
                res = dut.infer(1, 0)
                ok = res.results == golden[i]
                rows.append({"sample": i, "results": res.results, "golden": golden[i], "equal": ok})
                if not ok:
                    problems.append(f"input {i}: results {res.results} != golden {golden[i]}")
            perf = dut.infer(iterations, warmups) if n else None
            again = dut.results() if n else []
            if perf is not None and perf.results != golden[n - 1]:
                problems.append(
                    f"infer {iterations} {warmups}: results {perf.results} != golden {golden[n - 1]}"
                )
            if perf is not None and again != perf.results:
                problems.append(f"results {again} != the last infer's {perf.results}")
            transcript += dut.transcript
    elapsed = perf.elapsed_us if perf is not None else None
    summary: dict[str, Any] = {
        "schema": "hkdeploy.mlperf_check/1",
        "port": url,
        "name": name,
        "profile": profile,
        "model_id": model,
        "inputs": n,
        "equal": sum(r["equal"] for r in rows),
        "performance": {
            "iterations": iterations,
            "warmups": warmups,
            "elapsed_us": elapsed,
            "us_per_inference": (elapsed / iterations) if elapsed else None,
            "note": "the runner requires a timed window of at least 10 s per run",
        },
        "problems": problems,
        "rows": rows,
    }
    write_json(out_dir / "check.json", summary)
    write_text(out_dir / "check_transcript.txt", "".join(f"{d} {t}\n" for d, t in transcript))
    info(
        f"mlperf check: {name} ({model}) on {url}: {summary['equal']}/{n} results equal the golden"
        + (f"; {elapsed / iterations:.1f} us per inference" if elapsed else "")
    )
    if problems:
        raise CheckFailed(
            f"mlperf check failed: {problems[0]}"
            + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
            hint=f"see {out_dir / 'check.json'} and {out_dir / 'check_transcript.txt'}",
        )
    return CheckResult(summary, True, out_dir)

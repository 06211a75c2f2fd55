"""``hkdeploy export``: Keras -> [QAT] -> TFLite (batch 1) -> inspect -> arena -> three-way check -> artifacts.

Everything goes to ``job_dir/export``. Files are staged in a temporary folder and moved in only
when complete, each by an atomic rename, so a failed run never leaves a half-written header that
looks valid. A threshold failure still writes every artifact and report, then raises CheckFailed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hkdeploy import __version__
from hkdeploy.boards import Board, board_for
from hkdeploy.children import signals_deferred, sigterm_as_interrupt
from hkdeploy.config.params import DeployParams
from hkdeploy.console import info as say
from hkdeploy.console import verbosity, warn
from hkdeploy.errors import CheckFailed, UserError
from hkdeploy.export.artifacts import render_model_buffer, render_model_config, render_model_ops
from hkdeploy.export.inspect import ModelInfo, inspect_model
from hkdeploy.fsutil import copy_file, write_bytes, write_json, write_text
from hkdeploy.tflm import ArenaResult, TflmRunner, probe_arena

ARTIFACTS = (
    "model.tflite",
    "model_buffer.h",
    "model_ops.h",
    "model_config.h",
    "test_data.npz",
    "export_report.json",
    "report.html",
)


@dataclass
class ExportResult:
    """What export produced and measured."""

    export_dir: Path
    model_info: ModelInfo
    arena: ArenaResult
    report: dict[str, Any]
    passed: bool
    timings: dict[str, float] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.export_dir / name


def effective_format(params: DeployParams) -> str:
    """The conversion format: ``quantization.format`` when enabled, else float32."""
    return params.quantization.format if params.quantization.enabled else "float32"


def check_board_fit(info: ModelInfo, arena: ArenaResult, board: Board) -> dict[str, Any]:
    """Model size vs the board's application MRAM and arena vs its SRAM (raises when it doesn't fit)."""
    limits = board.limits()
    fit = {
        "board": board.name,
        "limits_of": limits.name,
        "model_bytes": info.size,
        "app_mram_bytes": limits.app_bytes,
        "arena_bytes": arena.board,
        "sram_bytes": limits.sram_bytes,
    }
    if limits.app_bytes is not None and info.size > limits.app_bytes:
        raise UserError(
            f"the model ({info.size} bytes) does not fit {limits.name}'s application MRAM "
            f"({limits.app_bytes} bytes)",
            hint="shrink the model, or pick a board with more MRAM (hkdeploy boards)",
        )
    if limits.sram_bytes is not None and arena.board > limits.sram_bytes:
        raise UserError(
            f"the tensor arena ({arena.board} bytes) does not fit {limits.name}'s SRAM ({limits.sram_bytes} bytes)",
            hint="reduce activation sizes (fewer filters, more striding early), or pick a bigger board",
        )
    return fit


class _Steps:
    """Times each step and shows progress for the slow ones."""

    def __init__(self, verbose: bool) -> None:
        self.timings: dict[str, float] = {}
        self.verbose = verbose

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        from hkdeploy.console import console

        start = time.perf_counter()
        if self.verbose:
            with console.status(f"{name}…", spinner="dots"):
                yield
        else:
            yield
        elapsed = time.perf_counter() - start
        self.timings[name] = round(elapsed, 3)
        if self.verbose:
            say(f"  ✓ {name} ({elapsed:.1f} s)")


def export(params: DeployParams, *, show_progress: bool = True) -> ExportResult:
    """Run the whole export for ``params``; artifacts land in ``params.export_dir``.

    Raises:
        UserError: bad model/data/config, an op TFLM lacks, a model that doesn't fit the board.
        CheckFailed: the float -> TFLM drop of ``test_metric`` exceeds ``test_metric_threshold``
            (after every artifact has been written).
    """
    from hkdeploy import tasks
    from hkdeploy.datasets import load_split
    from hkdeploy.export import check, integrity, rewrites
    from hkdeploy.export.convert import ConvertSpec
    from hkdeploy.export.load import check_model_path
    from hkdeploy.export.worker import (
        WAIT_CONVERT_S,
        WAIT_LOAD_S,
        WAIT_OTHER_S,
        WAIT_QAT_S,
        TfWorker,
        WorkerJob,
    )

    steps = _Steps(show_progress)
    q = params.quantization
    fmt = effective_format(params)
    board = board_for(params.board)
    model_file = check_model_path(params.model_file)
    out_dir = params.export_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_stages(out_dir)
    qat = q.qat and fmt in ("int8", "int16x8")
    with sigterm_as_interrupt():
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-", dir=out_dir))
        worker: TfWorker | None = None
        try:
            # TensorFlow starts in the worker now and loads the model while this process loads the data.
            spec = ConvertSpec(
                model_path=str(model_file),
                out_path=str(stage / "model.tflite"),
                format=fmt,
                io_type=q.io_type,
                fallback=q.fallback,
                conversion=q.conversion,
                calibration_path=None,
                use_logits=params.use_logits,
                staged=False,
            )
            debug = bool(q.debug and fmt in ("int8", "int16x8"))
            worker = TfWorker(
                WorkerJob(
                    stage=str(stage),
                    convert=spec,
                    qat=qat,
                    debug=debug,
                    verbosity=verbosity(),
                    allow_unsafe=params.allow_unsafe_deserialization,
                )
            )
            with steps.step("load data"):
                test = load_split(params, "test", params.test_size)
                calib = None
                if fmt in ("int8", "int16x8") or q.qat:
                    calib = load_split(params, "train", q.calibration_size)
            worker.send_data(params, calib, test)
            with steps.step("load model"):
                loaded = worker.wait("loaded", WAIT_LOAD_S, "loading the model")
                _check_model_io(loaded["input_shape"], loaded["outputs"], params)
                # hkdeploy.export.integrity / hkdeploy.tasks: labels fit the output, task stated
                integrity.check_label_shapes(tuple(loaded["output_shape"]), test.y.shape, params.num_classes)
                task = tasks.resolve(params.task, test.y)
            say(f"  task: {task.name} ({task.reason})")
            qat_report: dict[str, Any] | None = None
            if qat:
                with steps.step("quantization-aware training"):
                    qat_report = worker.wait("qat", WAIT_QAT_S, "quantization-aware training")["report"]
            with steps.step(f"convert to {fmt} (batch 1)"):
                converted = worker.wait("converted", WAIT_CONVERT_S, f"converting to {fmt}")
                tflite_bytes = (stage / "model.tflite").read_bytes()
                model_name = str(converted["name"])
                rewrite_records = [rewrites.RewriteRecord(**r) for r in converted.get("rewrites", [])]
                kinds: dict[str, str] = dict(converted.get("layers", {}))
            with steps.step("inspect"):
                info = inspect_model(tflite_bytes)
                rewrites.check_tflm_ops_named(info, kinds)
                fops = integrity.float_ops(tflite_bytes, fmt, kinds)
                if fops:
                    warn(integrity.float_ops_summary(fops))
                integrity.refuse_float_ops(fops, q.fallback)
            with steps.step("probe arena"):
                arena = probe_arena(stage / "model.tflite")
                fit = check_board_fit(info, arena, board)
            with steps.step(f"three-way check on {len(test)} frames"):
                # TFLM here while the worker runs the Keras float and host int8 legs
                raw_in = check.quantize_inputs(test.x, info)
                tflm_raw = TflmRunner(tflite_bytes, arena.board).run_many(raw_in)
                legs_ev = worker.wait("legs", WAIT_OTHER_S, "running the Keras and TFLite legs")
                with np.load(legs_ev["path"]) as legs:
                    outputs = check.CheckOutputs(
                        keras_float=legs["keras_float"],
                        tflite_raw=legs["tflite_raw"],
                        tflm_raw=tflm_raw,
                        input_raw=raw_in,
                    )
                if task.kind == "classification":
                    results = check.evaluate(outputs, test.y, info, params.num_classes)
                else:
                    results = _task_results(task, outputs, test.y, test.x, info, params.num_classes)
            if params.firmware.arena_target:  # after the host legs: they run with the host figure
                from hkdeploy.export.target32 import size_from_target32

                with steps.step("arena on the 32-bit target"):
                    arena = size_from_target32(
                        params, board, info, arena, tflite_bytes, model_name, raw_in[0]
                    )
                    fit = check_board_fit(info, arena, board)
            if task.kind == "classification":
                verdict = _verdict(params, results["_legs"])
            else:
                verdict = tasks.verdict(
                    task,
                    results["legs"],
                    "keras_float",
                    "tflm",
                    params.test_metric,
                    params.val_metric,
                    params.test_metric_threshold,
                )
            peak = float(np.max(np.abs(check.dequantize_outputs(outputs.tflite_raw, info)), initial=0.0))
            agree = integrity.agreement(fmt, results["pairs"]["tflite_int8__tflm"], peak, bool(fops))
            verdict = integrity.merge_verdict(verdict, agree)
            if agree["status"] == "warning":
                warn(f"{agree['name']}: {agree['message']}")
            if qat_report is not None and "_legs" in results:
                qat_report["qat_int8_acc"] = results["_legs"]["tflm"].accuracy
            debug_table = None
            if debug and calib is not None:
                with steps.step("quantization debugger"):
                    debug_table = worker.wait("debug", WAIT_QAT_S, "running the quantization debugger")[
                        "table"
                    ]
            worker.close()  # its work is done (it exits by itself; this reaps it)

            with steps.step("write headers and reports"):
                var = params.tflm_var_name
                write_bytes(stage / "out" / "model.tflite", tflite_bytes)
                write_text(
                    stage / "out" / "model_buffer.h", render_model_buffer(tflite_bytes, info, var, model_name)
                )
                write_text(stage / "out" / "model_ops.h", render_model_ops(info, var, model_name))
                write_text(
                    stage / "out" / "model_config.h",
                    render_model_config(info, arena, var, model_name, params.labels()),
                )
                np.savez(
                    stage / "out" / "test_data.npz",
                    x=test.x,
                    y=test.y,
                    input_raw=outputs.input_raw,
                    keras_float=outputs.keras_float,
                    tflite_int8=outputs.tflite_raw,
                    tflm=outputs.tflm_raw,
                    patient_ids=test.patient_ids if test.patient_ids is not None else np.zeros(0, np.int64),
                )
                report = _report_dict(
                    params, info, arena, fit, results, verdict, steps.timings, fmt, qat_report, debug_table
                )
                report["task"] = task.to_dict()
                report["rewrites"] = [r.to_dict() for r in rewrite_records]
                report["float_ops"] = [f.to_dict() for f in fops]
                write_json(stage / "out" / "export_report.json", report)
                from hkdeploy.export.report import render_html

                errors = outputs.keras_float - check.dequantize_outputs(outputs.tflm_raw, info)
                if task.kind == "classification":
                    render_html(report, params.labels(), errors).write(stage / "out" / "report.html")
                else:
                    html = _task_html(report, params, test.x, test.y, outputs, info)
                    html.write(stage / "out" / "report.html")
            with signals_deferred():  # all artifacts of this run or none: no signal between the renames
                for name in ARTIFACTS:
                    (stage / "out" / name).replace(out_dir / name)
            if params.tflm_file is not None:
                copy_file(out_dir / "model_buffer.h", params.tflm_file)
        finally:
            if worker is not None:
                worker.close()  # stops it when this process failed first
            shutil.rmtree(stage, ignore_errors=True)

    result = ExportResult(out_dir, info, arena, report, bool(verdict["passed"]), steps.timings)
    if not verdict["passed"]:
        hint = f"see {out_dir / 'report.html'}; QAT (quantization.qat) may help"
        if verdict["agreement"]["status"] == "fail":
            hint = f"see 'pairs' in {out_dir / 'export_report.json'}: TFLM computes this model differently from TFLite"
        raise CheckFailed(verdict["message"], hint=hint)
    return result


STAGE_PREFIX = ".export-"


def remove_stale_stages(out_dir: Path) -> list[Path]:
    """Remove staging folders that exports killed with SIGKILL left behind; returns what was removed.

    A stage is named ``.export-<pid>-<random>``: it is stale when that process no longer runs
    (a live export of another process in the same job_dir keeps its folder). Folders named without
    a pid (older versions) are stale.
    """
    removed = []
    for path in out_dir.glob(f"{STAGE_PREFIX}*"):
        if not path.is_dir():
            continue
        pid_text = path.name[len(STAGE_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and _alive(int(pid_text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _check_model_io(input_shape: list[int | None], n_out: int, params: DeployParams) -> None:
    shape = tuple(input_shape)
    if shape and shape[0] != params.frame_size:
        raise UserError(
            f"the model takes frames of {shape[0]} samples but frame_size is {params.frame_size}",
            hint="set frame_size to the model's input length",
        )
    if n_out != params.num_classes:
        raise UserError(
            f"the model has {n_out} outputs but num_classes is {params.num_classes}",
            hint="set num_classes (and class_names) to match the model",
        )


def _task_results(
    task: Any, outputs: Any, y: np.ndarray, x: np.ndarray, info: ModelInfo, num_classes: int
) -> dict[str, Any]:
    """Segmentation / denoise metrics of the three legs (``hkdeploy.tasks``)."""
    from hkdeploy import tasks
    from hkdeploy.export import check

    out_shape = tuple(info.output.shape[1:])
    integer = info.output.dtype in ("int8", "uint8", "int16")
    deq = {
        "keras_float": outputs.keras_float,
        "tflite_int8": check.dequantize_outputs(outputs.tflite_raw, info),
        "tflm": check.dequantize_outputs(outputs.tflm_raw, info),
    }
    raw = {"tflite_int8": outputs.tflite_raw, "tflm": outputs.tflm_raw} if integer else None
    return tasks.evaluate(task, deq, y, x, out_shape, num_classes, raw)


def _task_html(
    report: dict[str, Any], params: DeployParams, x: np.ndarray, y: np.ndarray, outputs: Any, info: ModelInfo
) -> Any:
    from hkdeploy import tasks
    from hkdeploy.export import check
    from hkdeploy.report.html import HtmlReport
    from hkdeploy.report.tasks_html import add_task_sections

    r = HtmlReport(f"hkdeploy export: {report['name']}", f"hkdeploy {report['hkdeploy_version']}")
    r.heading("Verdict", "verdict")
    r.verdict(bool(report["verdict"]["passed"]), report["verdict"]["message"])
    out_shape = tuple(info.output.shape[1:])
    kf = tasks.as_steps(outputs.keras_float[:1], out_shape)
    tm = tasks.as_steps(check.dequantize_outputs(outputs.tflm_raw[:1], info), out_shape)
    if report["task"]["kind"] == "segmentation":
        series = {"labels": y[0], "Keras float": kf[0].argmax(-1), "TFLM": tm[0].argmax(-1)}
    else:
        series = {"target": y[0], "Keras float": kf[0], "TFLM": tm[0]}
    add_task_sections(
        r, report["task"], report["metrics"], report["pairs"], params.labels(), {"x": x[0], "series": series}
    )
    r.heading("Model", "model")
    r.table(["op", "count"], [[k, c] for k, c in report["model"]["ops"].items()])
    return r


def _verdict(params: DeployParams, legs: dict[str, Any]) -> dict[str, Any]:
    """Compare the primary metric of Keras float and TFLM against ``test_metric_threshold``
    (the one rule, ``metrics.metric_verdict``, that validate applies to the device too)."""
    from hkdeploy.metrics import metric_verdict

    v = metric_verdict(params.test_metric, legs["keras_float"], legs["tflm"], params.test_metric_threshold)
    message = (
        f"{v.label} drops {v.drop:+.4f} from Keras float ({v.reference:.4f}) to TFLM ({v.deployed:.4f})"
        + (f"; allowed drop is {v.threshold}" if v.threshold is not None else "; no threshold set")
    )
    return {
        "metric": v.metric,
        "float": v.reference,
        "tflm": v.deployed,
        "drop": v.drop,
        "threshold": v.threshold,
        "passed": v.passed,
        "message": message,
    }


def _report_dict(
    params: DeployParams,
    info: ModelInfo,
    arena: ArenaResult,
    fit: dict[str, Any],
    results: dict[str, Any],
    verdict: dict[str, Any],
    timings: dict[str, float],
    fmt: str,
    qat: dict[str, Any] | None,
    debug: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The stable, documented structure of export_report.json (see docs/export.md)."""
    model = info.to_dict()
    return {
        "schema": "hkdeploy.export_report/1",
        "hkdeploy_version": __version__,
        "name": params.name,
        "model_file": str(params.model_file),
        "quantization": {
            "format": fmt,
            "io_type": params.quantization.io_type,
            "qat": params.quantization.qat,
        },
        "model": {
            "sha256": info.sha256,
            "size": info.size,
            "params": info.params,
            "macs": info.macs,
            "ops": info.ops,
            "tensor_types": info.tensor_types,
            "input": model["inputs"][0],
            "output": model["outputs"][0],
            "layers": model["layers"],
        },
        "arena": {
            "host_min": arena.host_min,
            "recorded": arena.recorded,
            "board": arena.board,
            "probes": arena.probes,
            "target32": arena.target32,
        },
        "board_fit": fit,
        "test": {
            "frames": results.get("frames", int(np.sum(results["legs"]["tflm"].get("confusion", 0)))),
            "requested": params.test_size,  # test_size; fewer frames when the data has fewer (warned)
            "class_names": params.labels(),
        },
        "metrics": results["legs"],
        "pairs": results["pairs"],
        "verdict": verdict,
        "qat": qat,
        "quantization_debug": debug,
        "timings_s": dict(timings),  # steps so far (writing the artifacts is timed in ExportResult.timings)
    }

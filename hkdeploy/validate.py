"""``hkdeploy validate``: hardware-in-the-loop accuracy and latency on boards or the virtual EVB.

HELLO (the model hash must be the exported one and allocation must have succeeded), then the
export's seeded test frames stream with RUN, sharded over every device given; each result is
appended to ``job_dir/validate/results.jsonl`` as it arrives (flushed), so ``--resume`` continues an
interrupted run without redoing or losing samples. PERF measures latency. The report compares device
▸ TFLM golden ▸ Keras float; thresholds fail the command (exit 1) after everything is written.
No TensorFlow: the golden and float outputs come from the export's ``test_data.npz``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hkdeploy import metrics
from hkdeploy.boards import board_for
from hkdeploy.console import info, progress
from hkdeploy.errors import CheckFailed, DeviceError, UserError
from hkdeploy.fsutil import write_json, write_text
from hkdeploy.link.client import DeviceClient, Timeouts
from hkdeploy.params import DeployParams
from hkdeploy.tasks_validate import example_frame, live_score, summarize_task, task_of, write_task_report


@dataclass
class ValidateResult:
    """What validate measured."""

    summary: dict[str, Any]
    passed: bool
    out_dir: Path


def _load_export(params: DeployParams) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    export = params.export_dir
    report_path, data_path = export / "export_report.json", export / "test_data.npz"
    if not report_path.is_file() or not data_path.is_file():
        raise UserError(f"no export in {export}", hint="run `hkdeploy export` first (or `hkdeploy run`)")
    with np.load(data_path) as d:
        data = {k: d[k] for k in d.files}
    return json.loads(report_path.read_text()), data


def read_results(path: Path) -> dict[int, dict[str, Any]]:
    """Results already on disk by sample id; a torn last line (killed mid-write) is ignored."""
    done: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[int(rec["sample"])] = rec
    return done


def _cut_torn_tail(path: Path) -> None:
    """A run killed mid-write leaves a partial last line: cut it so appended results stay parseable."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


@contextlib.contextmanager
def _devices(params: DeployParams, ports: list[str], sim_boards: int, log_dir: Path) -> Iterator[list[str]]:
    """URLs of the devices to use; for the virtual EVB, build and start host ports (always stopped)."""
    board = board_for(params.board)
    if params.backend == "sim" or board.is_sim:
        from hkdeploy.build import emulated, ensure_sim
        from hkdeploy.link.hostport import HostPort

        binary = ensure_sim(params)
        limits = emulated(params, board)
        with contextlib.ExitStack() as stack:
            urls = []
            for i in range(max(1, sim_boards)):
                hp = HostPort(
                    binary,
                    f"sim:{limits.name}",
                    limits.app_bytes,
                    limits.sram_bytes,
                    baud=params.link.baud if params.link.pace else 0,
                    log_path=log_dir / f"hostport{i}.log",
                )
                stack.enter_context(hp)
                urls.append(hp.url)
            yield urls
        return
    if not ports:
        from hkdeploy.link.discovery import find_port

        ports = [
            find_port(
                params.link.port,
                params.link.usb_vid or board.usb_vid,
                params.link.usb_pid or board.usb_pid,
                params.link.serial_number,
            )
        ]
    yield ports


def validate(
    params: DeployParams,
    ports: list[str] | None = None,
    resume: bool = False,
    sim_boards: int = 1,
    show_progress: bool = True,
) -> ValidateResult:
    """Run the hardware-in-the-loop validation (see the module doc).

    Raises:
        UserError: no export. DeviceError: a device failed (results so far stay on disk).
        CheckFailed: a threshold failed (after every report has been written).
    """
    report, data = _load_export(params)
    out = params.validate_dir
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    if not resume and results_path.exists():
        results_path.unlink()
    _cut_torn_tail(results_path)
    done = read_results(results_path)
    raw, y = data["input_raw"], data["y"]
    out_dtype = data["tflm"].dtype
    out_shape = tuple(report["model"]["output"]["shape"][1:])
    n = len(raw)
    todo = [i for i in range(n) if i not in done]
    sha = bytes.fromhex(report["model"]["sha256"])
    timeouts = Timeouts(
        params.link.connect_timeout,
        params.link.packet_timeout,
        params.link.command_timeout,
        params.link.retries,
    )
    lock = threading.Lock()
    errors: list[BaseException] = []
    hello_info: dict[str, Any] = {}
    perf: dict[str, Any] = {}
    start = time.perf_counter()
    bytes_moved = [0]
    running = [0, 0, 0.0]  # correct, frames, summed µs of this run (the live progress status)

    with _devices(params, list(ports or []), sim_boards, out) as urls, open(results_path, "a") as sink:
        shards = [todo[k :: len(urls)] for k in range(len(urls))]
        deadline = time.monotonic() + params.link.run_timeout

        def worker(url: str, ids: list[int], bar: Any, task: Any) -> None:
            try:
                with DeviceClient(url, params.link.baud, timeouts) as dev:
                    h = dev.check_ready(sha)
                    with lock:
                        hello_info.setdefault("board", h.board)
                        hello_info.setdefault("arena_size", h.arena_size)
                        hello_info.setdefault("arena_used", h.arena_used)
                        hello_info.setdefault("build_id", h.build_id)
                        hello_info.setdefault("cpu_hz", h.cpu_hz)
                    for i in ids:
                        if time.monotonic() > deadline:
                            raise DeviceError(
                                f"validate exceeded link.run_timeout ({params.link.run_timeout} s)"
                            )
                        r = dev.run(raw[i].tobytes())
                        rec = {
                            "sample": i,
                            "label": np.asarray(y[i]).tolist(),
                            "output": np.frombuffer(r.output, out_dtype).tolist(),
                            "cycles": r.cycles,
                            "micros": r.micros,
                            "device": url,
                        }
                        with lock:
                            sink.write(json.dumps(rec) + "\n")
                            sink.flush()
                            os.fsync(sink.fileno())
                            done[i] = rec
                            bytes_moved[0] += len(r.output) + raw[i].nbytes
                            running[0] += live_score(rec["output"], y[i], out_shape)
                            running[1] += 1
                            running[2] += r.micros
                            if bar is not None:
                                bar.update(
                                    task,
                                    advance=1,
                                    status=f"acc {running[0] / running[1]:.3f}  "
                                    f"{running[2] / running[1]:.0f} µs/inference",
                                )
                    if not perf:
                        p = dev.perf(warmup=5, runs=20)
                        with lock:
                            perf.update(
                                {
                                    "runs": p.runs,
                                    "cycles_min": p.cycles_min,
                                    "cycles_median": p.cycles_median,
                                    "cycles_max": p.cycles_max,
                                    "cpu_hz": p.cpu_hz,
                                }
                            )
            except BaseException as exc:  # collected, re-raised in the main thread
                with lock:
                    errors.append(exc)

        with progress(enabled=show_progress) as bar:
            task = bar.add_task("validate", total=n, completed=n - len(todo), status="")
            threads = [
                threading.Thread(target=worker, args=(u, s, bar, task), daemon=True)
                for u, s in zip(urls, shards, strict=True)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=max(1.0, deadline - time.monotonic() + 10))
    if errors:
        raise errors[0]
    elapsed = time.perf_counter() - start
    summary = _summarize(params, report, data, done, perf, hello_info, elapsed, bytes_moved[0], len(todo))
    if summary.get("task"):
        _write_task_reports(out, summary, params, data)
    else:
        _write_reports(out, summary, params)
    info(f"validate: {summary['verdict']['message']} ({out})")
    if not summary["verdict"]["passed"]:
        raise CheckFailed(summary["verdict"]["message"], hint=f"see {out / 'report.html'}")
    return ValidateResult(summary, True, out)


def _summarize(
    params: DeployParams,
    report: dict[str, Any],
    data: dict[str, np.ndarray],
    done: dict[int, dict[str, Any]],
    perf: dict[str, Any],
    hello_info: dict[str, Any],
    elapsed: float,
    moved: int,
    fresh: int,
) -> dict[str, Any]:
    ids = sorted(done)
    out_q = report["model"]["output"]
    device_raw = np.array([done[i]["output"] for i in ids])
    golden_raw = data["tflm"][ids].reshape(len(ids), -1)
    task = task_of(report)
    if task is not None:  # segmentation / denoise: hkdeploy.tasks_validate
        legs_t, pairs_t, checks_t, verdict_t = summarize_task(
            params, task, report, data, ids, device_raw, golden_raw
        )
        base = _summarize_common(done, ids, perf, hello_info, elapsed, moved, fresh)
        return {
            **base,
            "task": task.to_dict(),
            "metrics": legs_t,
            "pairs": pairs_t,
            "checks": checks_t,
            "verdict": verdict_t,
            "_example": example_frame(task, report, data, ids[0], device_raw) if ids else None,
        }
    y = data["y"][ids]
    dev_f = metrics.dequantize(device_raw, out_q["scale"], out_q["zero_point"])
    gold_f = metrics.dequantize(golden_raw, out_q["scale"], out_q["zero_point"])
    keras_f = data["keras_float"][ids].reshape(len(ids), -1)
    nc = params.num_classes
    legs = {
        "device": metrics.classification(y, dev_f.argmax(1), nc),
        "tflm_golden": metrics.classification(y, gold_f.argmax(1), nc),
        "keras_float": metrics.classification(y, keras_f.argmax(1), nc),
    }
    integer = out_q["dtype"] in ("int8", "uint8", "int16")
    pairs = {
        "device__tflm_golden": metrics.compare(
            dev_f, gold_f, device_raw if integer else None, golden_raw if integer else None
        ),
        "device__keras_float": metrics.compare(dev_f, keras_f),
    }
    cycles = [done[i]["cycles"] for i in ids]
    micros = [done[i]["micros"] for i in ids]
    name = "f1" if params.test_metric == "f1" else "acc"
    drop = legs["keras_float"].metric(name) - legs["device"].metric(name)
    limit = params.test_metric_threshold
    exact = pairs["device__tflm_golden"].exact_match
    checks = {
        "model_hash": True,
        "all_samples": len(ids) == len(data["y"]),
        "device_matches_golden": exact is None or exact == 1.0,
        "metric_drop": limit is None or drop <= limit + 1e-12,
    }
    passed = all(checks.values())
    label = "macro F1" if name == "f1" else "accuracy"
    message = (
        f"{len(ids)} frames on {hello_info.get('board', '?')}: device {label} {legs['device'].metric(name):.4f}, "
        f"float {legs['keras_float'].metric(name):.4f} (drop {drop:+.4f}"
        + (f", allowed {limit}" if limit is not None else "")
        + f"); device == TFLM golden on "
        f"{(exact if exact is not None else float('nan')):.1%} of frames"
    )
    return {
        "schema": "hkdeploy.validate_summary/1",
        "frames": len(ids),
        "frames_this_run": fresh,
        "device": hello_info,
        "metrics": {k: v.to_dict() for k, v in legs.items()},
        "pairs": {k: v.to_dict() for k, v in pairs.items()},
        "latency": {
            "cycles": metrics.latency_stats(cycles),
            "micros": metrics.latency_stats(micros),
            "inferences_per_s": (1e6 / float(np.median(micros)))
            if micros and np.median(micros) > 0
            else None,
        },
        "perf": perf,
        "link": {
            "seconds": elapsed,
            "frames_per_s": fresh / elapsed if elapsed > 0 else None,
            "bytes_per_s": moved / elapsed if elapsed > 0 else None,
        },
        "checks": checks,
        "verdict": {"passed": passed, "message": message, "metric": name, "drop": drop, "threshold": limit},
    }


def _summarize_common(
    done: dict[int, dict[str, Any]],
    ids: list[int],
    perf: dict[str, Any],
    hello_info: dict[str, Any],
    elapsed: float,
    moved: int,
    fresh: int,
) -> dict[str, Any]:
    """The task-independent part of the summary (latency, link, device)."""
    micros = [done[i]["micros"] for i in ids]
    return {
        "schema": "hkdeploy.validate_summary/1",
        "frames": len(ids),
        "frames_this_run": fresh,
        "device": hello_info,
        "latency": {
            "cycles": metrics.latency_stats([done[i]["cycles"] for i in ids]),
            "micros": metrics.latency_stats(micros),
            "inferences_per_s": (1e6 / float(np.median(micros)))
            if micros and np.median(micros) > 0
            else None,
        },
        "perf": perf,
        "link": {
            "seconds": elapsed,
            "frames_per_s": fresh / elapsed if elapsed > 0 else None,
            "bytes_per_s": moved / elapsed if elapsed > 0 else None,
        },
        "_micros": micros,
    }


def _write_task_reports(
    out: Path, summary: dict[str, Any], params: DeployParams, data: dict[str, Any]
) -> None:
    """summary.json, report.html and junit.xml of a segmentation / denoise validation."""
    write_task_report(out, summary, params, data)
    public = {k: v for k, v in summary.items() if not k.startswith("_")}
    write_json(out / "summary.json", public)
    _write_junit(out, public, params)


def _write_reports(out: Path, summary: dict[str, Any], params: DeployParams) -> None:
    from hkdeploy.report.html import HtmlReport, bars_figure, confusion_figure, histogram_figure

    write_json(out / "summary.json", summary)
    labels = params.labels()
    r = HtmlReport(
        f"hkdeploy validate: {params.name}", f"{summary['frames']} frames on {summary['device'].get('board')}"
    )
    r.heading("Verdict", "verdict")
    r.verdict(summary["verdict"]["passed"], summary["verdict"]["message"])
    r.table(["check", "passed"], [[k, v] for k, v in summary["checks"].items()])
    r.heading("Metrics", "metrics")
    legs = summary["metrics"]
    r.table(
        ["", *legs],
        [
            ["accuracy", *[legs[k]["accuracy"] for k in legs]],
            ["macro F1", *[legs[k]["macro_f1"] for k in legs]],
        ],
    )
    keys = ["top1_agreement", "rmse", "mae", "max_abs_err", "l2_relative", "cosine", "exact_match", "max_lsb"]
    r.table(
        ["pair", *keys],
        [[p.replace("__", " ▸ "), *[summary["pairs"][p][k] for k in keys]] for p in summary["pairs"]],
    )
    r.heading("Confusion matrices", "confusion")
    for k in legs:
        r.figure(confusion_figure(legs[k]["confusion"], labels, k), f"confusion {k}")
    r.heading("Per-class metrics", "per-class")
    r.figure(bars_figure({k: legs[k]["f1"] for k in legs}, labels, "F1 per class", "F1"), "per-class F1")
    r.heading("Latency", "latency")
    lat = summary["latency"]
    r.table(
        ["", "min", "median", "p95", "max"],
        [[u, *[lat[u][s] for s in ("min", "median", "p95", "max")]] for u in ("cycles", "micros")],
    )
    r.key_values(
        {
            "inferences/s (median)": lat["inferences_per_s"],
            **{f"PERF {k}": v for k, v in summary["perf"].items()},
            "link frames/s": summary["link"]["frames_per_s"],
            "link bytes/s": summary["link"]["bytes_per_s"],
        }
    )
    micros = [rec for rec in read_results(out / "results.jsonl").values()]
    r.figure(histogram_figure([m["micros"] for m in micros], "Invoke latency", "µs"), "latency histogram")
    r.write(out / "report.html")
    _write_junit(out, summary, params)


def _write_junit(out: Path, summary: dict[str, Any], params: DeployParams) -> None:
    suite = ET.Element(
        "testsuite",
        name=f"hkdeploy.validate.{params.name}",
        tests=str(len(summary["checks"])),
        failures=str(sum(not v for v in summary["checks"].values())),
    )
    for check, ok in summary["checks"].items():
        case = ET.SubElement(suite, "testcase", classname="hkdeploy.validate", name=check)
        if not ok:
            ET.SubElement(case, "failure", message=summary["verdict"]["message"])
    write_text(out / "junit.xml", ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n")

"""``hkdeploy validate``: hardware-in-the-loop accuracy and latency on any target.

Two halves. **Streaming** (``stream``): HELLO (the model hash must be the exported one and
allocation must have succeeded), then the export's seeded test frames go out with RUN, sharded over
every device of the run (``hkdeploy.platforms.open_devices``: ports, virtual EVBs, emulated boards);
each result is appended to ``job_dir/validate/results.jsonl`` as it arrives (flushed and fsynced,
tagged with the model hash and the export it belongs to), so ``--resume`` continues an interrupted
run without redoing or losing samples, and refuses results of another export. PERF measures
latency. **Summarising** (``summarize``): device ▸ TFLM golden ▸ Keras float, the one verdict rule
(``metrics.metric_verdict``), reports; thresholds fail the command (exit 1) after everything is
written. Latency is labelled with what the target's counter measures (host time of the virtual EVB,
instructions on an emulated Cortex-M, cycles on a board). No TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hkdeploy import metrics
from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams
from hkdeploy.console import info, progress, warn
from hkdeploy.contracts import EXPORT_REPORT, ExportManifest, TestData, load_export, load_test_data
from hkdeploy.errors import CheckFailed, DeviceError, UserError
from hkdeploy.fsutil import write_json, write_text
from hkdeploy.link.client import DeviceClient, Profile
from hkdeploy.link.pipeline import run_many
from hkdeploy.platforms import Counter, connect, open_devices, platform_of, target_board
from hkdeploy.platforms.base import counter_from_hello
from hkdeploy.validate import layers
from hkdeploy.validate.tasks import example_frame, summarize_task, task_of, write_task_report

RESUME_HINT = "start afresh (drop --resume)"


@dataclass
class ValidateResult:
    """What validate measured."""

    summary: dict[str, Any]
    passed: bool
    out_dir: Path


def export_id(export_dir: Path) -> str:
    """Identity of an export: the hash of its report (a re-export with any change gives another)."""
    return hashlib.sha256((export_dir / EXPORT_REPORT).read_bytes()).hexdigest()[:16]


_RECORD_KEYS = ("sample", "output", "cycles", "micros", "model_sha256", "export")


def read_results(path: Path) -> dict[int, dict[str, Any]]:
    """Results already on disk by sample id; a torn last line (killed mid-write) is ignored.

    Raises:
        UserError: a line other than the last is damaged, or a record lacks its fields.
    """
    done: dict[int, dict[str, Any]] = {}
    if not path.exists():
        return done
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for n, line in enumerate(lines, 1):
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or any(k not in rec for k in _RECORD_KEYS):
                raise ValueError("not a result record")
            done[int(rec["sample"])] = rec
        except (ValueError, TypeError):
            if n == len(lines):
                continue  # the torn tail of a killed run
            raise UserError(f"{path} line {n} is damaged: {line[:60]!r}", hint=RESUME_HINT) from None
    return done


def _cut_torn_tail(path: Path) -> None:
    """A run killed mid-write leaves a partial last line: cut it so appended results stay parseable."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def _check_resumable(done: dict[int, dict[str, Any]], sha: str, export: str, n: int, path: Path) -> None:
    for rec in done.values():
        if rec.get("model_sha256") != sha or rec.get("export") != export:
            raise UserError(
                f"{path} holds results of another export (model {str(rec.get('model_sha256'))[:12]}…, "
                f"the current export's model is {sha[:12]}…)",
                hint=RESUME_HINT,
            )
        if not 0 <= int(rec["sample"]) < n:
            raise UserError(f"{path} holds sample {rec['sample']}, the test set has {n}", hint=RESUME_HINT)


@dataclass
class Stream:
    """What the streaming half gathered (shared by the device threads under ``lock``)."""

    done: dict[int, dict[str, Any]]
    fresh: int = 0
    moved: int = 0
    correct: int = 0
    micros: float = 0.0
    device: dict[str, Any] = field(default_factory=dict)
    perf: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    profile: Profile | str | None = None  # PROFILE of the first device (or why there is none)
    layer_diff: dict[str, Any] | None = None  # the first differing frame's per-layer diff
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def stream(
    params: DeployParams,
    board: Board,
    export: ExportManifest,
    data: TestData,
    *,
    ports: list[str],
    resume: bool,
    devices: int,
    show_progress: bool,
    guard: Callable[[], None] | None = None,
) -> Stream:
    """Send every test frame not yet done to the run's devices; results go to results.jsonl as they come.

    ``guard`` is called before each sample is recorded and may raise to stop the run (e.g. a lab
    place's lock was lost with its coordinator); results so far stay on disk for ``--resume``.

    Raises:
        UserError: results of another export with ``resume``. DeviceError: a device failed or
        ``link.run_timeout`` passed (results so far stay on disk).
    """
    out = params.validate_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.jsonl"
    if not resume and path.exists():
        path.unlink()
    _cut_torn_tail(path)
    done = read_results(path)
    sha, this_export = export.model.sha256, export_id(params.export_dir)
    n = len(data)
    _check_resumable(done, sha, this_export, n, path)
    todo = [i for i in range(n) if i not in done]
    st = Stream(done)
    out_dtype = data.tflm.dtype
    raw, y = data.input_raw, data.y
    run_timeout = params.link.run_timeout
    start = time.monotonic()
    deadline = start + run_timeout

    # the connections stay open until the per-layer views are taken on the first one (a virtual EVB
    # exits when its port is closed), then close whatever happened
    clients: dict[str, DeviceClient] = {}

    def worker(url: str, ids: list[int], bar: Any, task: Any) -> None:
        try:
            dev = connect(params, url)
            with st.lock:
                clients[url] = dev
            h = dev.check_ready(export.sha256)
            with st.lock:
                for key in ("board", "arena_size", "arena_used", "build_id", "cpu_hz", "counter_kind"):
                    st.device.setdefault(key, getattr(h, key))
            # pipelined: up to link.window (default: the device's credits) RUNs in flight
            frames = (raw[i].tobytes() for i in ids)
            for i, r in zip(ids, run_many(dev, frames, params.link.window), strict=True):
                if time.monotonic() > deadline:
                    raise DeviceError(
                        f"validate exceeded link.run_timeout ({run_timeout:g} s) with {len(st.done)} of {n} "
                        "frames done",
                        hint="raise link.run_timeout, or continue with --resume",
                    )
                if guard is not None:
                    guard()
                rec = {
                    "sample": i,
                    "label": y[i].tolist(),
                    "output": np.frombuffer(r.output, out_dtype).tolist(),
                    "cycles": r.cycles,
                    "micros": r.micros,
                    "device": url,
                    "model_sha256": sha,
                    "export": this_export,
                }
                with st.lock:
                    sink.write(json.dumps(rec) + "\n")
                    sink.flush()
                    os.fsync(sink.fileno())
                    st.done[i] = rec
                    st.fresh += 1
                    st.moved += len(r.output) + raw[i].nbytes
                    st.correct += int(y[i].ndim == 0 and int(np.argmax(rec["output"])) == int(y[i]))
                    st.micros += r.micros
                    if bar is not None:
                        bar.update(
                            task,
                            advance=1,
                            status=f"acc {st.correct / st.fresh:.3f}  {st.micros / st.fresh:.0f} µs/inference",
                        )
            with st.lock:
                measure = not st.perf
                if measure:
                    st.perf["pending"] = True
            if measure:
                p = dev.perf(warmup=5, runs=20)
                with st.lock:
                    st.perf.clear()
                    st.perf.update(
                        runs=p.runs,
                        cycles_min=p.cycles_min,
                        cycles_median=p.cycles_median,
                        cycles_max=p.cycles_max,
                        cpu_hz=p.cpu_hz,
                    )
        except BaseException as exc:  # collected, re-raised in the main thread
            with st.lock:
                st.errors.append(exc)

    with (
        open_devices(params, board, ports, devices, out) as urls,
        open(path, "a", encoding="utf-8") as sink,
        contextlib.ExitStack() as closing,
    ):
        closing.callback(_close_all, clients)
        shards = [todo[k :: len(urls)] for k in range(len(urls))]
        with progress(enabled=show_progress) as bar:
            task = bar.add_task("validate", total=n, completed=n - len(todo), status="")
            threads = [
                threading.Thread(target=worker, args=(u, s, bar, task), daemon=True)
                for u, s in zip(urls, shards, strict=True)
            ]
            for t in threads:
                t.start()
            # every request is bounded by command_timeout, so a thread ends at most that long after
            # the run's deadline
            grace = params.link.command_timeout * (params.link.retries + 2) + 10
            for t in threads:
                t.join(timeout=max(1.0, deadline + grace - time.monotonic()))
            if any(t.is_alive() for t in threads):
                raise DeviceError(
                    f"validate exceeded link.run_timeout ({run_timeout:g} s): a device stopped answering",
                    hint="raise link.run_timeout, check the device, or continue with --resume",
                )
        if not st.errors and st.done and urls[0] in clients:
            inspect_device(clients[urls[0]], export, data, st, params.export_dir)
    st.perf.pop("pending", None)
    if st.errors:
        raise st.errors[0]
    st.seconds = time.monotonic() - start
    return st


def _close_all(clients: dict[str, DeviceClient]) -> None:
    for c in list(clients.values()):
        c.close()


def inspect_device(
    dev: DeviceClient, export: ExportManifest, data: TestData, st: Stream, export_dir: Path
) -> None:
    """The per-layer views (``hkdeploy.validate.layers``) on the run's first device: a PROFILE of the
    first test frame, and, when a frame differs from the golden, the per-layer diff of the first such
    frame. They explain a run, they do not judge it: a device error here is a warning."""
    layer_list = list(getattr(export.model, "layers", None) or [])
    bad = layers.first_mismatch(st.done, data.tflm)
    url = dev.url
    try:
        st.profile = layers.take_profile(dev, data.input_raw[0].tobytes())
        if bad is not None:
            frame = data.input_raw[bad]
            try:
                host = layers.host_op_outputs(export_dir / "model.tflite", export.arena.host, frame)
            except (RuntimeError, ValueError, OSError) as exc:  # the runtime's own words
                st.layer_diff = {
                    "frame": bad,
                    "available": False,
                    "reason": f"the host interpreter failed: {exc}",
                }
            else:
                st.layer_diff = layers.layer_diff(dev, bad, frame, layer_list, host)
            info(f"validate: {layers.describe_diff(st.layer_diff)}")
    except DeviceError as exc:
        warn(f"validate: no per-layer profile/diff from {url}: {exc}")
        if st.profile is None:
            st.profile = f"the device failed: {exc}"
        if bad is not None and st.layer_diff is None:
            st.layer_diff = {"frame": bad, "available": False, "reason": f"the device failed: {exc}"}


def validate(
    params: DeployParams,
    ports: list[str] | None = None,
    resume: bool = False,
    sim_boards: int = 1,
    show_progress: bool = True,
    board: str | None = None,
    guard: Callable[[], None] | None = None,
) -> ValidateResult:
    """Stream the test set to the target's devices, then summarise (see the module doc).

    ``sim_boards``: how many devices a platform that starts its own (virtual EVB, QEMU) starts.

    Raises:
        UserError: no export, or results of another export with ``resume``. DeviceError: a device
        failed (results so far stay on disk). CheckFailed: a threshold failed (after the reports).
    """
    export = load_export(params.export_dir)
    data = load_test_data(params.export_dir)
    target = target_board(params, board)
    st = stream(
        params,
        target,
        export,
        data,
        ports=list(ports or []),
        resume=resume,
        devices=sim_boards,
        show_progress=show_progress,
        guard=guard,
    )
    counter = platform_of(target).counter(target)
    if "counter_kind" in st.device:
        counter = counter_from_hello(
            int(st.device["counter_kind"]),
            str(st.device.get("board")),
            counter,
            int(st.device.get("cpu_hz") or 0),
        )
    summary = summarize(params, export, data, st, counter)
    out = params.validate_dir
    write_reports(out, summary, params)
    info(f"validate: {summary['verdict']['message']} ({out})")
    lat = summary["latency"]
    if lat["measured"]:
        info(f"validate: latency is {counter.label}")
    else:
        info(f"validate: latency not measured: {lat['reason']}")
    prof = summary["profile"]
    if prof["available"]:
        top = max(prof["ops"], key=lambda r: r["cycles"], default=None)
        if top is not None:
            info(
                f"validate: per-layer profile: {prof['recorded']} operators, {prof['cycles_total']:,.0f} "
                f"{counter.unit} per Invoke(); most: operator {top['index']} {top['op']} "
                f"({(top['share'] or 0):.0%})"
            )
    if not summary["verdict"]["passed"]:
        hint = f"see {out / 'report.html'}"
        diff = summary.get("layer_diff")
        if diff and diff.get("first_layer"):
            hint += f"; {layers.describe_diff(diff)}"
        raise CheckFailed(summary["verdict"]["message"], hint=hint)
    return ValidateResult(summary, True, out)


def summarize(
    params: DeployParams, export: ExportManifest, data: TestData, st: Stream, counter: Counter
) -> dict[str, Any]:
    """Metrics of every leg and pair, latency, link figures, checks and the verdict."""
    done = st.done
    ids = sorted(done)
    out_q = export.model.output
    device_raw = np.array([done[i]["output"] for i in ids])
    golden_raw = data.tflm[ids].reshape(len(ids), -1)
    task = task_of(export.model_dump(mode="json", by_alias=True))
    if task is not None:  # segmentation / denoise: hkdeploy.validate.tasks
        return _task_summary(params, export, data, st, counter, task, ids, device_raw, golden_raw)
    y = data.y[ids]
    dev_f = metrics.dequantize(device_raw, out_q.scale, out_q.zero_point)
    gold_f = metrics.dequantize(golden_raw, out_q.scale, out_q.zero_point)
    keras_f = data.keras_float[ids].reshape(len(ids), -1)
    nc = params.num_classes
    legs = {
        "device": metrics.classification(y, dev_f.argmax(1), nc),
        "tflm_golden": metrics.classification(y, gold_f.argmax(1), nc),
        "keras_float": metrics.classification(y, keras_f.argmax(1), nc),
    }
    integer = out_q.dtype in ("int8", "uint8", "int16")
    pairs = {
        "device__tflm_golden": metrics.compare(
            dev_f, gold_f, device_raw if integer else None, golden_raw if integer else None
        ),
        "device__keras_float": metrics.compare(dev_f, keras_f),
    }
    cycles = [done[i]["cycles"] for i in ids]
    micros = [done[i]["micros"] for i in ids]
    verdict = metrics.metric_verdict(
        params.test_metric, legs["keras_float"], legs["device"], params.test_metric_threshold
    )
    exact = pairs["device__tflm_golden"].exact_match
    checks = {
        "all_samples": len(ids) == len(data),
        "device_matches_golden": exact is None or exact == 1.0,
        "metric_drop": verdict.passed,
    }
    passed = all(checks.values())
    limit = verdict.threshold
    message = (
        f"{len(ids)} frames on {st.device.get('board', '?')}: device {verdict.label} {verdict.deployed:.4f}, "
        f"float {verdict.reference:.4f} (drop {verdict.drop:+.4f}"
        + (f", allowed {limit}" if limit is not None else "")
        + "); device == TFLM golden on "
        f"{(exact if exact is not None else float('nan')):.1%} of frames"
    )
    return {
        "schema": "hkdeploy.validate_summary/1",
        "frames": len(ids),
        "frames_this_run": st.fresh,
        "device": st.device,
        "metrics": {k: v.to_dict() for k, v in legs.items()},
        "pairs": {k: v.to_dict() for k, v in pairs.items()},
        **_device_sections(export, st, counter, cycles, micros),
        "checks": checks,
        "verdict": {
            "passed": passed,
            "message": message,
            "metric": verdict.metric,
            "drop": verdict.drop,
            "threshold": limit,
        },
    }


def _device_sections(
    export: ExportManifest, st: Stream, counter: Counter, cycles: list[int], micros: list[float]
) -> dict[str, Any]:
    """summary.json's latency, perf, per-layer profile and diff, and link figures (every task's)."""
    return {
        "latency": latency_section(counter, cycles, micros, st.perf),
        "perf": st.perf,
        "profile": layers.profile_section(
            st.profile, list(getattr(export.model, "layers", None) or []), counter
        ),
        "layer_diff": st.layer_diff,
        "link": {
            "seconds": st.seconds,
            "frames_per_s": st.fresh / st.seconds if st.seconds > 0 else None,
            "bytes_per_s": st.moved / st.seconds if st.seconds > 0 else None,
        },
    }


def latency_section(
    counter: Counter, cycles: list[int], micros: list[float], perf: dict[str, Any]
) -> dict[str, Any]:
    """summary.json's ``latency``: stats of a measurement, or null figures with the reason."""
    reason = latency_not_measured(counter, cycles, perf)
    median_us = float(np.median(micros)) if micros else 0.0
    k = counter.per_count
    return {
        "counter": {
            "unit": counter.unit,
            "label": counter.label,
            "real_time": counter.real_time,
            "per_count": k,  # unit per count the device reported (raw counts: results.jsonl, perf)
        },
        "measured": reason is None,
        "reason": reason,  # why there is no latency (None when measured)
        "cycles": metrics.latency_stats([c * k for c in cycles]) if reason is None else None,
        "perf": (
            {s: perf[f"cycles_{s}"] * k for s in ("min", "median", "max") if f"cycles_{s}" in perf}
            if reason is None
            else None
        ),
        "micros": metrics.latency_stats(micros) if reason is None else None,
        "inferences_per_s": (1e6 / median_us) if reason is None and median_us > 0 else None,
    }


def latency_not_measured(counter: Counter, cycles: list[int], perf: dict[str, Any]) -> str | None:
    """Why the device's timings are not a measurement (None when they are): no counter (HELLO's
    counter_kind 0), or a counter that gave 0 for every frame and for PERF."""
    if not counter.measured:
        return counter.label
    perf_cycles = [perf[k] for k in ("cycles_min", "cycles_median", "cycles_max") if k in perf]
    if cycles and not any(cycles) and not any(perf_cycles):
        what = "every frame and PERF" if perf_cycles else "every frame"
        return f"the device reported 0 {counter.unit} for {what}: its counter is not running"
    return None


def _task_summary(
    params: DeployParams,
    export: ExportManifest,
    data: TestData,
    st: Stream,
    counter: Counter,
    task: Any,
    ids: list[int],
    device_raw: np.ndarray,
    golden_raw: np.ndarray,
) -> dict[str, Any]:
    """The summary of a segmentation / denoise validation (same shape as ``summarize``'s, plus task)."""
    report = export.model_dump(mode="json", by_alias=True)
    legs, pairs, checks, verdict = summarize_task(
        params, task, report, data.arrays, ids, device_raw, golden_raw
    )
    micros = [st.done[i]["micros"] for i in ids]
    return {
        "schema": "hkdeploy.validate_summary/1",
        "task": task.to_dict(),
        "frames": len(ids),
        "frames_this_run": st.fresh,
        "device": st.device,
        "metrics": legs,
        "pairs": pairs,
        **_device_sections(export, st, counter, [st.done[i]["cycles"] for i in ids], micros),
        "checks": checks,
        "verdict": {**verdict, "passed": bool(verdict["passed"] and all(checks.values()))},
        "_example": example_frame(task, report, data.arrays, ids[0], device_raw) if ids else None,
        "_micros": micros,
    }


def write_reports(out: Path, summary: dict[str, Any], params: DeployParams) -> None:
    """summary.json, report.html and junit.xml."""
    if summary.get("task"):  # segmentation / denoise: its own report page (hkdeploy.validate.tasks)
        write_task_report(out, summary, params, {})
        summary = {k: v for k, v in summary.items() if not k.startswith("_")}
        write_json(out / "summary.json", summary)
        _write_junit(out, summary, params)
        return
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
    lat = summary["latency"]
    r.heading("Latency", "latency")
    if lat.get("measured", True):
        r.text(f"Measured by: {lat['counter']['label']}.")
        unit = lat["counter"]["unit"]
        r.table(
            ["", "min", "median", "p95", "max"],
            [
                [name, *[lat[key][s] for s in ("min", "median", "p95", "max")]]
                for key, name in (
                    ("cycles", unit),
                    ("micros", "µs" if lat["counter"]["real_time"] else "µs (not real time)"),
                )
            ],
        )
    else:
        r.text(f"Latency: not measured ({lat['reason']}).")
    r.key_values(
        {
            "inferences/s (median)": lat["inferences_per_s"] if lat.get("measured", True) else "not measured",
            **{f"PERF {k} (as counted)": v for k, v in summary["perf"].items()},
            **{f"PERF {k} ({lat['counter']['unit']})": v for k, v in (lat.get("perf") or {}).items()},
            "link frames/s": summary["link"]["frames_per_s"],
            "link bytes/s": summary["link"]["bytes_per_s"],
        }
    )
    if lat.get("measured", True):
        micros = list(read_results(out / "results.jsonl").values())
        r.figure(
            histogram_figure(
                [m["micros"] for m in micros], f"Invoke latency ({lat['counter']['label']})", "µs"
            ),
            "latency histogram",
        )
    layers.add_report_sections(r, summary)
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

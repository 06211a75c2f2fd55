"""The export's one TensorFlow process: load, [QAT], convert, the Keras float and host int8 legs, [debug].

``import tensorflow`` costs seconds of CPU; an export starts it once, here. The parent
(``hkdeploy.export.api``) stays TensorFlow-free: it starts this worker first (TensorFlow loads while
the parent loads the data), then does the data, the TFLM leg, the arena probes and the reports
while the worker works. The worker dies with its parent (PR_SET_PDEATHSIG).

Protocol (all inside the staging folder the parent owns):

- argv: the path of ``worker_job.json`` (a ``WorkerJob``).
- stdin: the parent writes one line once ``worker_input.pkl`` (params, calibration and test
  splits) is complete; EOF instead means "stop".
- the worker's fd 1 carries events, one JSON object per line: ``loaded`` (layer kinds, I/O
  shapes), ``qat`` (its report), ``converted`` (``model.tflite`` written), ``legs``
  (``legs.npz``: Keras float outputs, host int8 outputs), ``debug`` (the per-layer table), ``done``;
  ``say`` carries a console line; ``error`` a UserError/ToolError/bug (kind, message, hint). Stray
  prints go to the stderr file, never into the event stream.
- stderr: ``worker_stderr.txt`` (the converter's own messages; read when it crashes or rejects).

A crash (the int8 converter segfaults on Keras GRU/LSTM) ends the stream early: the parent turns the
exit status into the same one-line UserError as before, naming the layer kinds.

Keras-level rewrites of the model (anything that needs the Keras object) belong in ``_run``, right
after the model is loaded: this is the only process that holds it. Decisions that need only the
params or the data belong in the parent (``api.export``).
"""

from __future__ import annotations

import json
import os
import pickle
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hkdeploy.children import die_with_parent_fn
from hkdeploy.errors import HkDeployError, ToolError, UserError
from hkdeploy.export.convert import ConvertSpec, _conversion_error
from hkdeploy.export.rewrites import explain_conversion_error

# Bounds on each wait for the worker (seconds): start-up + load, QAT (epochs of training), the
# conversion (as the converter child had), each of the rest.
WAIT_LOAD_S = 600.0
WAIT_QAT_S = 6 * 3600.0
WAIT_CONVERT_S = 900.0
WAIT_OTHER_S = 900.0


@dataclass(frozen=True)
class WorkerJob:
    """What the worker does; ``convert.model_path`` is the model file it loads."""

    stage: str
    convert: ConvertSpec
    qat: bool
    debug: bool
    verbosity: int
    allow_unsafe: bool = False  # allow_unsafe_deserialization (Lambda layers)


class WorkerDied(HkDeployError):
    """The worker ended without an answer (crash or kill); ``returncode`` says how."""

    def __init__(self, message: str, returncode: int | None, stderr: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class TfWorker:
    """Parent side: start the worker, feed it the data, wait for its events (each wait bounded)."""

    def __init__(self, job: WorkerJob) -> None:
        self.job = job
        self.stage = Path(job.stage)
        job_path = self.stage / "worker_job.json"
        job_path.write_text(json.dumps(asdict(job)))
        self._stderr_path = self.stage / "worker_stderr.txt"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        with open(self._stderr_path, "wb") as err:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "hkdeploy.export.worker", str(job_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                preexec_fn=die_with_parent_fn(),
            )
        assert self._proc.stdout is not None
        self._out = self._proc.stdout.fileno()
        os.set_blocking(self._out, False)
        self._buf = b""
        self._events: list[dict[str, Any]] = []
        self.layer_types: list[str] = []

    def send_data(self, params: Any, calibration: Any, test: Any) -> None:
        """Hand the worker the params and data splits (a pickle in the stage: our own objects only)."""
        tmp = self.stage / "worker_input.pkl.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump((params, calibration, test), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, self.stage / "worker_input.pkl")
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(b"go\n")
            self._proc.stdin.flush()
        except BrokenPipeError:  # it died already: the next wait says how
            pass

    def wait(self, event: str, timeout: float, doing: str) -> dict[str, Any]:
        """Block until ``event`` arrives (forwarding ``say`` lines); raise if the worker fails first.

        Raises:
            UserError / ToolError / HkDeployError: the worker reported one, or crashed while ``doing``.
        """
        deadline = time.monotonic() + timeout
        while True:
            while self._events:
                ev = self._events.pop(0)
                name = ev.get("event")
                if name == "say":
                    from hkdeploy.console import console

                    console.file.write(str(ev.get("text", "")))
                    console.file.flush()
                elif name == "error":
                    raise self._error(ev, doing)
                elif name == event:
                    if name == "loaded":
                        self.layer_types = list(ev["layer_types"])
                    return ev
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.cancel()
                raise ToolError(
                    f"the TensorFlow worker did not finish {doing} within {timeout:.0f} s",
                    hint="a very large model? try a smaller calibration_size / test_size",
                )
            if not self._read(remaining):
                raise self._died(doing)

    def _read(self, timeout: float) -> bool:
        """Read what is there into events; False at EOF."""
        with selectors.DefaultSelector() as sel:
            sel.register(self._out, selectors.EVENT_READ)
            if not sel.select(timeout=min(timeout, 1.0)):
                return True
        try:
            chunk = os.read(self._out, 1 << 16)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if line.strip():
                self._events.append(json.loads(line))
        return True

    def _stderr(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def _error(self, ev: dict[str, Any], doing: str) -> HkDeployError:
        kind = ev.get("kind")
        if kind == "convert":  # the converter raised: its own words, one line (hkdeploy.export.rewrites)
            exc = _conversion_error(self.job.convert, 1, self._stderr(), self.layer_types)
            return explain_conversion_error(exc, self._stderr_path, self.job.convert.format)
        message, hint = str(ev.get("message", "")), ev.get("hint")
        if kind == "user":
            return UserError(message, hint=hint)
        if kind == "tool":
            return ToolError(message, hint=hint)
        return HkDeployError(
            f"internal error in the TensorFlow worker while {doing}: {message}",
            hint="run again with -vv for the traceback and report it",
        )

    def _died(self, doing: str) -> HkDeployError:
        try:
            rc = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.cancel()
            rc = None
        stderr = self._stderr()
        if doing.startswith("convert") and rc is not None and rc != 0:
            return _conversion_error(self.job.convert, rc, stderr, self.layer_types)
        tail = " | ".join(ln for ln in stderr.splitlines() if ln.strip())[-400:]
        if rc is not None and (rc < 0 or rc >= 128):
            sig = -rc if rc < 0 else rc - 128
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            return UserError(
                f"the TensorFlow worker crashed ({name}) while {doing}" + (f": {tail}" if tail else ""),
                hint="TensorFlow itself failed on this model; run again with -vv to see its messages",
            )
        return HkDeployError(
            f"the TensorFlow worker exited ({rc}) while {doing} without saying why: {tail}",
            hint="run again with -vv and report it",
        )

    def close(self) -> None:
        """Stop the worker (a no-op once it has exited); bounded."""
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a killed child always exits
            pass
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    cancel = close


# ---------------------------------------------------------------- the worker process


class _Events:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, event: str, **payload: Any) -> None:
        line = json.dumps({"event": event, **payload}, default=_plain) + "\n"
        data = line.encode()
        while data:
            n = os.write(self.fd, data)
            data = data[n:]


class _ConsoleForward:
    """A file for the worker's rich console: each write becomes a ``say`` event."""

    def __init__(self, events: _Events) -> None:
        self.events = events

    def write(self, text: str) -> int:
        if text:
            self.events.send("say", text=text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _run(job: WorkerJob, events: _Events) -> None:
    import numpy as np

    from hkdeploy.export import check
    from hkdeploy.export.convert import convert_keras
    from hkdeploy.export.inspect import inspect_model
    from hkdeploy.export.load import deployable, load_keras_model

    stage = Path(job.stage)
    spec = job.convert
    from hkdeploy.export import rewrites

    model = load_keras_model(Path(spec.model_path), allow_unsafe=job.allow_unsafe)
    rewrites.check_single_io(model)  # one line before anything converts
    layer_types = sorted({type(layer).__name__ for layer in model._flatten_layers(include_self=False)})
    events.send(
        "loaded",
        layer_types=layer_types,
        input_shape=[None if d is None else int(d) for d in model.inputs[0].shape[1:]],
        output_shape=[None if d is None else int(d) for d in model.outputs[0].shape[1:]],
        outputs=int(model.outputs[0].shape[-1]),
        name=model.name,
    )
    if not sys.stdin.readline():  # the parent stopped (or failed on the data)
        return
    with open(stage / "worker_input.pkl", "rb") as fh:
        params, calib, test = pickle.load(fh)

    float_model = model  # the Keras float leg is always the user's model
    # TFLM-compatibility rewrites (hkdeploy.export.rewrites): the converted model is rewritten, the
    # float leg stays the user's model, so the check measures rewrite + quantization.
    model, rewrite_records = rewrites.prepare(model, test.x, flatten=params.flatten)
    from hkdeploy.console import info as say

    for rec in rewrite_records:
        say(f"  {rec.line()}")
    if job.qat:
        from hkdeploy.export.qat import run_qat

        model, qat_report = run_qat(model, params, calib, test, stage)
        events.send("qat", report=qat_report)

    try:
        tflite = convert_keras(model, spec, calib.x if calib is not None else None)
    except HkDeployError:
        raise
    except Exception:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        events.send("error", kind="convert")
        return
    tmp = Path(spec.out_path + ".tmp")
    tmp.write_bytes(tflite)
    os.replace(tmp, spec.out_path)
    events.send(
        "converted",
        name=model.name,
        rewrites=[r.to_dict() for r in rewrite_records],
        layers=rewrites.layer_kinds(model),
    )

    info = inspect_model(tflite)
    raw_in = check.quantize_inputs(test.x, info)
    keras_float = check.run_keras(deployable(float_model, spec.use_logits), test.x)
    tflite_raw = check.run_tflite(tflite, raw_in)
    legs = stage / "legs.npz"
    with open(stage / "legs.tmp.npz", "wb") as fh:
        np.savez(fh, keras_float=keras_float, tflite_raw=tflite_raw)
    os.replace(stage / "legs.tmp.npz", legs)
    events.send("legs", path=str(legs))

    if job.debug:
        from hkdeploy.export.debug import layer_errors

        events.send("debug", table=layer_errors(model, params, calib, stage))
    events.send("done")


def main(argv: list[str]) -> int:  # pragma: no cover - runs in the child (tests drive it through export)
    events = _Events(os.dup(1))
    os.dup2(2, 1)  # anything printed goes to the stderr file, not into the event stream
    sys.stdout = sys.stderr
    raw = json.loads(Path(argv[0]).read_text())
    job = WorkerJob(**{**raw, "convert": ConvertSpec(**raw["convert"])})
    from hkdeploy import console

    console.set_verbosity(job.verbosity)
    console.console.file = _ConsoleForward(events)  # type: ignore[assignment]
    try:
        _run(job, events)
    except HkDeployError as exc:
        kind = "user" if isinstance(exc, UserError) else "tool" if isinstance(exc, ToolError) else "bug"
        events.send("error", kind=kind, message=exc.message, hint=exc.hint)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        first = (str(exc).splitlines() or [""])[0][:300]
        events.send("error", kind="bug", message=f"{type(exc).__name__}: {first}")
    sys.stderr.flush()
    os._exit(0)  # everything is written: skip TensorFlow's slow teardown


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))

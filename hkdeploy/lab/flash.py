"""Flash a lab place's board on its exporter host, through labgrid's flash-script driver.

labgrid has no J-Link or pyOCD driver; its ``FlashScriptDriver`` copies a script to the exporter
host that holds the probe (bound to the place's ``NetworkUSBFlashableDevice``, i.e. the probe's USB
device exported as ``USBFlashableDevice``) and runs it there. The script hkdeploy hands it is
self-contained and carries:

- the firmware binary (base64; decoded and checked against its SHA-256 before anything runs),
- our runner's exact command lines (``JLinkExe ...`` with its command file, or ``pyocd flash ...``),
  as ``hkdeploy flash`` would run them locally, with the paths pointing into the script's temp dir,
- the runner's failure markers (JLinkExe exits 0 on many failures: its output decides).

The stale-binary refusal is the local one (:func:`hkdeploy.firmware.build.current_build`): a binary whose
manifest no longer matches the export or the firmware sources is never sent (``--force`` as for
``hkdeploy flash``).
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams
from hkdeploy.console import info
from hkdeploy.errors import DeviceError, ToolError
from hkdeploy.flash.runners import Runner

WORK = "$HK_WORK"
BINARY = "$HK_WORK/firmware.bin"


def flash_script(runner: Runner, binary: bytes) -> str:
    """The POSIX shell script that flashes ``binary`` with ``runner``'s own command lines.

    Reproducible: the same runner options and binary give the same script (no timestamps).
    """
    with tempfile.TemporaryDirectory() as tmp:
        local_bin = Path(tmp) / "firmware.bin"
        local_bin.write_bytes(binary)
        commands = runner.commands(local_bin, Path(tmp))
        files = {p.name: p.read_text() for p in sorted(Path(tmp).iterdir()) if p.name != "firmware.bin"}
    markers: tuple[str, ...] = getattr(sys.modules[type(runner).__module__], "FAILURE_MARKERS", ())

    def here(text: str) -> str:
        return (
            text.replace(str(local_bin.resolve()), BINARY)
            .replace(str(Path(tmp).resolve()), WORK)
            .replace(tmp, WORK)
        )

    digest = hashlib.sha256(binary).hexdigest()
    lines = [
        "#!/bin/sh",
        f"# hkdeploy: flash with {runner.name} on the exporter host (generated; labgrid FlashScriptDriver)",
        "set -eu",
        'HK_WORK="$(mktemp -d)"',
        "trap 'rm -rf \"$HK_WORK\"' EXIT",
        "base64 -d > \"$HK_WORK/firmware.bin\" <<'HK_BINARY'",
        *_wrap(base64.b64encode(binary).decode()),
        "HK_BINARY",
        f'echo "{digest}  $HK_WORK/firmware.bin" | sha256sum -c --quiet -',
    ]
    for name, text in files.items():
        lines += [f"cat > \"$HK_WORK/{name}\" <<'HK_FILE'", here(text).rstrip("\n"), "HK_FILE"]
        lines.append(f'sed -i "s|[$]HK_WORK|$HK_WORK|g" "$HK_WORK/{name}"')
    for cmd in commands:
        argv = " ".join(_word(here(a)) for a in cmd.argv)
        lines += [
            f'if ! {argv} > "$HK_WORK/out.log" 2>&1; then cat "$HK_WORK/out.log"; '
            f"echo 'hkdeploy: {cmd.what or runner.name} failed' >&2; exit 1; fi",
            'cat "$HK_WORK/out.log"',
        ]
        for marker in markers:
            lines.append(
                f'if grep -qF {shlex.quote(marker)} "$HK_WORK/out.log"; then '
                f"echo {shlex.quote(f'hkdeploy: {runner.name} failed: {marker}')} >&2; exit 1; fi"
            )
    lines.append("echo 'hkdeploy: flashed'")
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int = 76) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def _word(arg: str) -> str:
    """A shell word: quoted, but with $HK_WORK left to the shell."""
    if WORK not in arg:
        return shlex.quote(arg)
    head, _, tail = arg.partition(WORK)
    return (shlex.quote(head) if head else "") + '"$HK_WORK"' + (_word(tail) if tail else "")


@dataclass
class LabFlashResult:
    board: Board
    runner: str
    places: list[str]
    script_sha256: str


def flash_places(params: DeployParams, board: Board, lab: Any, *, force: bool = False) -> LabFlashResult:
    """Flash the current build on every acquired place, through each place's exporter host.

    Raises:
        UserError: no build or a stale one (without ``force``). ToolError: labgrid missing.
        DeviceError: a place has no flashable probe, or the script failed on the exporter host.
    """
    from hkdeploy.firmware.build import current_build
    from hkdeploy.flash import make_runner
    from hkdeploy.fsutil import write_text

    built = current_build(params, board, force=force)  # the stale-binary refusal, as hkdeploy flash
    runner = make_runner(params, board)
    script = flash_script(runner, built.binary.read_bytes())
    path = write_text(params.job_dir / "lab" / f"flash-{board.name}.sh", script)
    path.chmod(0o755)
    for place in lab.places:
        _run_on_exporter(place, path, lab.session.address)
        info(f"lab: {built.binary.name} flashed on {place} with {runner.name} (its exporter host)")
    return LabFlashResult(board, runner.name, list(lab.places), hashlib.sha256(script.encode()).hexdigest())


def _run_on_exporter(place: str, script: Path, address: str) -> None:
    """labgrid: a target on the remote place, FlashScriptDriver on its NetworkUSBFlashableDevice."""
    try:
        from labgrid import Target
        from labgrid.driver import FlashScriptDriver
        from labgrid.resource.remote import RemotePlace
    except ImportError as exc:
        raise ToolError(f"labgrid is not installed ({exc})", hint="pip install 'hkdeploy[lab]'") from exc
    import os

    os.environ.setdefault("LG_COORDINATOR", address)
    target = Target(f"hkdeploy-{place}")
    try:
        RemotePlace(target, name=place)
        driver = FlashScriptDriver(target, name=None, script=str(script))
        target.activate(driver)
        driver.flash(script=str(script), args=[])
    except Exception as exc:  # labgrid raises its own types (NoResourceFoundError, ExecutionError, ...)
        raise DeviceError(
            f"flashing place {place} through labgrid failed: {type(exc).__name__}: {exc}",
            hint="does the place match the probe's USBFlashableDevice, and can this host ssh to the "
            "exporter host? (docs/lab.md, 'Flashing')",
        ) from exc
    finally:
        try:
            target.deactivate_all_drivers()
        except Exception:  # best effort: the place's release follows anyway
            pass

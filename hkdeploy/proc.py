"""The one way hkdeploy runs an external tool (make, gcc, JLinkExe, pyocd, size).

Every command is logged with its exact argv (``-v`` shows it on the console; ``job_dir/logs/commands.log``
keeps it), is bounded by a timeout, and honours ``dry_run`` (print, run nothing). Failures become a
``ToolError`` (exit 4) naming the tool and the last lines it printed, with a hint.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from hkdeploy.console import console, verbosity
from hkdeploy.errors import ToolError


@dataclass(frozen=True)
class Command:
    """One external command: argv plus where and how long it may run."""

    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    what: str = ""
    hint: str | None = None

    def line(self) -> str:
        """The command as a shell line (for logs, --dry-run and tests)."""
        prefix = f"cd {shlex.quote(str(self.cwd))} && " if self.cwd else ""
        env = "".join(f"{k}={shlex.quote(v)} " for k, v in sorted(self.env.items()))
        return prefix + env + shlex.join(self.argv)


@dataclass
class Result:
    """What a command did (``returncode`` None for a dry run)."""

    command: Command
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def tail(text: str, lines: int = 8) -> str:
    """The last non-empty lines of a tool's output."""
    kept = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def run(
    cmd: Command,
    *,
    dry_run: bool = False,
    log: Path | None = None,
    check: bool = True,
    echo: bool = False,
) -> Result:
    """Run ``cmd`` (or only print it with ``dry_run``).

    Args:
        log: append the command line, exit status and output to this file.
        check: raise on a non-zero exit status.
        echo: print the command line even at normal verbosity.

    Raises:
        ToolError: the tool is missing, timed out, or (with ``check``) failed.
    """
    line = cmd.line()
    if dry_run:
        console.print(f"(dry run) {line}", markup=False, highlight=False, soft_wrap=True)
        return Result(cmd, None)
    if echo or verbosity() >= 2:
        console.print(f"$ {line}", markup=False, highlight=False, soft_wrap=True)
    what = cmd.what or Path(cmd.argv[0]).name
    env = {**os.environ, **cmd.env} if cmd.env else None
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd.argv,
            cwd=cmd.cwd,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=cmd.timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ToolError(f"{cmd.argv[0]} is not installed (needed for {what})", hint=cmd.hint) from None
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        _log(log, line, None, str(out), time.monotonic() - start)
        raise ToolError(
            f"{what} did not finish within {cmd.timeout:.0f} s: {line}",
            hint="is the board connected and powered? run with -vv for the tool's output",
        ) from None
    result = Result(cmd, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
    _log(log, line, proc.returncode, result.output, result.seconds)
    if verbosity() >= 3 and result.output.strip():
        console.print(result.output, markup=False, highlight=False, soft_wrap=True)
    if check and proc.returncode != 0:
        raise ToolError(
            f"{what} failed (exit status {proc.returncode}): {line}\n{tail(result.output)}",
            hint=cmd.hint or "run with -vv to see the whole output",
        )
    return result


def _log(log: Path | None, line: str, code: int | None, output: str, seconds: float) -> None:
    if log is None:
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {line}\n# exit {code} after {seconds:.1f} s\n{output.rstrip()}\n\n")


def git_head(repo: Path) -> str | None:
    """The commit checked out in ``repo`` (None if it is not a git checkout or git is missing)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None

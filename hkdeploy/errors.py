"""The one small exception tree of hkdeploy.

Library code raises these; the CLI catches them once and prints one line (plus a ``Hint:``),
with the traceback only at ``-vv``. Nothing below the CLI calls ``exit()``.

Exit codes (documented in the README):

====  ============================================================
0     success
1     a check failed (accuracy threshold, validation metric)
2     usage, configuration or input error (bad config, bad model, bad dataset)
3     device or link error (no answer, bad port, stale firmware, allocation failure)
4     missing or failing external tool / SDK (toolchain, neuralSPOT, J-Link)
70    internal error (a bug in hkdeploy: please report it with ``-vv`` output)
130   interrupted (Ctrl-C)
====  ============================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_DEVICE = 3
EXIT_TOOL = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class HkDeployError(Exception):
    """Base of every error hkdeploy raises on purpose.

    Args:
        message: one sentence saying what happened.
        hint: what the user can try next (printed as ``Hint: ...``).
    """

    exit_code: int = EXIT_INTERNAL

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UserError(HkDeployError):
    """Bad usage or input: configuration, model file, dataset, arguments."""

    exit_code = EXIT_USAGE


class ConfigError(UserError):
    """The configuration is invalid (unknown key, bad value, unreadable file)."""


class CheckFailed(HkDeployError):
    """A quality check failed (e.g. accuracy drop above ``test_metric_threshold``).

    Raised only after every artifact and report has been written.
    """

    exit_code = EXIT_CHECK_FAILED


class DeviceError(HkDeployError):
    """The board or the link to it failed (no answer, bad frame, stale firmware, ...)."""

    exit_code = EXIT_DEVICE


class ToolError(HkDeployError):
    """An external tool or SDK is missing or failed (compiler, neuralSPOT, JLinkExe, pyocd)."""

    exit_code = EXIT_TOOL


def from_os_error(exc: OSError) -> UserError:
    """An OSError that escaped (job_dir is a file, read-only, disk full, ...) as one line with a hint.

    These are problems of the machine or the paths given, not bugs: exit 2, naming the file.
    """
    import errno
    import shutil
    from pathlib import Path

    name = exc.filename or ""
    what = exc.strerror or type(exc).__name__
    where = f" ({name})" if name else ""
    if exc.errno == errno.ENOSPC:
        free = ""
        probe = Path(str(name)) if name else Path.cwd()
        for folder in (probe, *probe.parents):
            try:
                free = f"; {shutil.disk_usage(folder).free:,} B free on {folder}"
                break
            except OSError:
                continue
        return UserError(
            f"the disk is full: cannot write {name or 'a file'}{free}",
            hint="free some space or point --job-dir at another disk; nothing half-written was kept",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(
            f"no permission to write{where}: {what}",
            hint="choose a writable job_dir (--job-dir) or fix the folder's permissions",
        )
    if exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        return UserError(
            f"a path is in the way{where}: {what}",
            hint="job_dir and the files it holds must be folders/files as hkdeploy writes them: use another --job-dir",
        )
    return UserError(f"file system error{where}: {what}", hint="check the path and the disk")

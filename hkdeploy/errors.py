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

"""Flash runners: one class per tool (``jlink``, ``pyocd``), found by name through ``RunnerFactory``.

A runner declares its capabilities (erase, reset, serial number, load address); asking for one it
lacks fails with a sentence naming the runner and the option. It turns a binary into exact command
lines (tests compare them), runs them through ``hkdeploy.proc`` (logged, bounded, ``--dry-run``) and
judges the tool's exit status and output itself: a failed flash is never reported as done.
"""

from __future__ import annotations

from hkdeploy.factory import Factory
from hkdeploy.flash.runners.base import FlashOptions, Runner, RunnerCaps
from hkdeploy.flash.runners.jlink import JLinkRunner
from hkdeploy.flash.runners.pyocd import PyOcdRunner

RunnerFactory: Factory[type[Runner]] = Factory("runner")
RunnerFactory.register(JLinkRunner.name, JLinkRunner)
RunnerFactory.register(PyOcdRunner.name, PyOcdRunner)

__all__ = ["FlashOptions", "JLinkRunner", "PyOcdRunner", "Runner", "RunnerCaps", "RunnerFactory"]

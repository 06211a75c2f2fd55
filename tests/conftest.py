"""Shared pytest options and fixtures.

Hardware-in-the-loop tests (``tests/hil``) run only with ``--port`` (and ``--board``); otherwise
they are skipped with the reason. Expensive artifacts (trained models, converted files, host-port
processes) are shared through session-scoped fixtures.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--port", action="append", default=[], help="serial port/URL of a real board (repeatable)"
    )
    parser.addoption("--board", default=None, help="board name of the attached board, e.g. apollo4p_evb")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--port"):
        return
    skip = pytest.mark.skip(reason="needs a real board: run with --port /dev/ttyACM0 --board apollo4p_evb")
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)

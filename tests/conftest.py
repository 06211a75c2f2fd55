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


# A test is `slow` (left out of `make test-fast`) when it converts with TensorFlow, streams through
# a host port or runs an emulator: it uses one of these fixtures (directly or through others), or
# its module says `pytestmark = pytest.mark.slow`.
SLOW_FIXTURES = {"exported_demo", "qemu_elfs", "qemu_boards", "tflm_trees"}
# Folders whose tests convert models, stream to devices or boot emulators, all of them slow but
# for the modules named in FAST_MODULES.
SLOW_DIRS = ("export", "tasks", "lab", "platform", "mlperf")
FAST_MODULES = {"test_naming.py", "test_tflm_ops.py", "test_qemu_registry.py", "test_custom_layer_scan.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.path
        in_slow_dir = path.parent.name in SLOW_DIRS and path.parent.parent.name == "tests"
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or (
            in_slow_dir and path.name not in FAST_MODULES
        ):
            item.add_marker(pytest.mark.slow)
    if config.getoption("--port"):
        return
    skip = pytest.mark.skip(reason="needs a real board: run with --port /dev/ttyACM0 --board apollo4p_evb")
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)


REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def exported_demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The real ``hkdeploy export`` of configs/demo.json, run once per session.

    Returns the ExportResult; ``result.export_dir`` holds model.tflite, model_buffer.h, model_ops.h,
    model_config.h, export_report.json, report.html and test_data.npz.
    """
    from hkdeploy.config import load_params
    from hkdeploy.export import export

    job = tmp_path_factory.mktemp("demo_job")
    params = load_params(REPO / "configs" / "demo.json", job_dir=job).params
    return export(params, show_progress=False)

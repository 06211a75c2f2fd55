"""Generated documentation stays in step with the code."""

from __future__ import annotations

from pathlib import Path

from tools import gen_config_doc as config_doc

REPO = Path(__file__).resolve().parents[2]


def test_config_reference_is_current() -> None:
    committed = (REPO / "docs" / "config.md").read_text()
    assert committed == config_doc.render(), (
        "docs/config.md is stale: python -m tools.gen_config_doc > docs/config.md"
    )


def test_readme_opens_with_the_two_commands() -> None:
    head = (REPO / "README.md").read_text().split("```")[1]
    commands = [ln.split("#")[0].strip() for ln in head.strip().splitlines()]
    assert commands == ["make demo", "make test"]

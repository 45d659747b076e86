"""The documentation's generated page matches the commands, and the front pages stay front pages."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_the_commands() -> None:
    """docs/cli.md is generated from the commands: regenerate it (scripts/cli_reference.py) when they change."""
    from fcnedge.cli.reference import cli_reference

    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == cli_reference()


def test_readme_and_model_card_stay_short() -> None:
    """README a front page (<= 12 KB), the model card a card (<= 10 KB); details live in docs/."""
    assert len((ROOT / "README.md").read_bytes()) <= 12 * 1024
    assert len((ROOT / "MODEL_CARD.md").read_bytes()) <= 10 * 1024

"""Write docs/cli.md, the CLI reference, from the commands (a test fails when it is stale).

Usage: .venv/bin/python scripts/cli_reference.py
"""

from __future__ import annotations

from pathlib import Path

from fcnedge.cli.reference import cli_reference

if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    out.write_text(cli_reference(), encoding="utf-8")
    print(f"wrote {out}")

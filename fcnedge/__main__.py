"""``python -m fcnedge``."""

from fcnedge.cli import app

app(prog_name="fcnedge")

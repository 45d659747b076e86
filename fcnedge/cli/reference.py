"""The CLI reference page of the documentation, generated from the commands themselves (docs/cli.md): every
command with its help, arguments and options, grouped as ``--help`` groups them. ``scripts/cli_reference.py``
writes it; a test fails when the page and the commands disagree."""

from __future__ import annotations

from typing import Any

__all__ = ["cli_reference"]


def cli_reference() -> str:
    """The reference page as Markdown."""
    import typer.main

    from fcnedge.cli import app

    root = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the commands (`.venv/bin/python scripts/cli_reference.py`); `fcnedge COMMAND --help` shows the",
        "same. Every command prints one line on stderr and exits with code 2 on bad input.",
        "",
    ]
    for name, cmd in _commands(root):
        lines += _command(name, cmd)
    return "\n".join(lines).rstrip() + "\n"


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            out += _commands(cmd, f"{prefix}{name} ")
        else:
            out.append((f"{prefix}{name}", cmd))
    return out


def _command(name: str, cmd: Any) -> list[str]:
    help_text = " ".join((cmd.help or "").split())
    lines = [f"## fcnedge {name}", "", help_text, ""]
    args = [p for p in cmd.params if p.param_type_name == "argument"]
    if args:
        lines += ["| argument | help |", "|---|---|"]
        lines += [f"| `{p.name.upper()}` | {_cell(getattr(p, 'help', '') or '')} |" for p in args]
        lines.append("")
    panels: dict[str, list[Any]] = {}
    for p in cmd.params:
        if p.param_type_name == "option":
            panels.setdefault(getattr(p, "rich_help_panel", None) or "Options", []).append(p)
    for panel, params in panels.items():
        lines += [f"**{panel}**", "", "| option | default | help |", "|---|---|---|"]
        for p in params:
            flags = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
            default = "" if p.default is None or p.required else f"`{_default(p.default)}`"
            lines.append(f"| {flags} | {default} | {_cell(p.help or '')} |")
        lines.append("")
    return lines


def _default(value: Any) -> str:
    return str(getattr(value, "value", value))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")

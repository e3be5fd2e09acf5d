"""Renders docs/CLI.md from the click commands themselves (``python -m pocsync.cli.docs > docs/CLI.md``).

A test compares the file with this output, so the documentation cannot drift from the CLI.
"""

from __future__ import annotations

import click

from pocsync.cli.main import cli


def _walk(cmd: click.Command, path: list[str], parent: click.Context | None = None) -> list[str]:
    ctx = click.Context(
        cmd, parent=parent, info_name=path[-1], terminal_width=100, max_content_width=100, **cmd.context_settings
    )
    out = [f"## `{' '.join(path)}`", "", "```", cmd.get_help(ctx).replace(" " * 2 + "\n", "\n").rstrip(), "```", ""]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is not None:
                out.extend(_walk(sub, path + [name], ctx))
    return out


def render() -> str:
    head = [
        "# The pocsync command line",
        "",
        "Generated from the commands' own help by `python -m pocsync.cli.docs > docs/CLI.md`;"
        " `tests/integration/test_cli.py` fails when this file is out of date.",
        "",
    ]
    return "\n".join(head + _walk(cli, ["pocsync"])).rstrip() + "\n"


if __name__ == "__main__":
    import os

    os.environ.setdefault("COLUMNS", "100")
    print(render(), end="")

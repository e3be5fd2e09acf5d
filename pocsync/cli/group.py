"""The command groups of the CLI: commands loaded when invoked, and the root group's error handling.

Importing this module costs click alone: ``pocsync --help`` and ``pocsync <group> --help`` list their
commands from a table (name → ``module:attr`` and short help) without importing the commands' modules,
which pull in rich, cryptography, the store and the core.  ``tests/unit/test_cli_registry.py`` checks that
every short help in a table is the command's own.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

import click

from pocsync.errors import PocsyncError

#: name → (``"module:attr"`` of the command, its short help as ``--help`` lists it)
Table = Mapping[str, tuple[str, str]]

NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
EXIT_ERROR = 2  # usage or input error; 1 is "ran, but something was quarantined/refused/unhealthy"
EXIT_INTERNAL = 3  # a bug: the one-line message asks for POCSYNC_TRACEBACK=1


def load(target: str) -> click.Command:
    """The command at ``"module:attr"``, imported now."""
    module, _, attr = target.partition(":")
    cmd = getattr(importlib.import_module(module), attr)
    if not isinstance(cmd, click.Command):
        raise TypeError(f"{target} is not a click command")
    return cmd


class LazyGroup(click.Group):
    """A group whose commands in ``lazy`` are imported only when one of them is resolved (invoked, or its
    own ``--help``); the group's ``--help`` lists them with the short help kept in the table."""

    def __init__(self, *args: Any, lazy: Table | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(load(self.lazy[cmd_name][0]), cmd_name)
        return self.commands.get(cmd_name)

    def listed_help(self, name: str, limit: int) -> str:
        """What ``--help`` lists for command ``name``, without importing a lazy one."""
        cmd = self.commands.get(name)
        if cmd is None:  # click's own shortening of the table's text, as it shortens the command's help
            cmd = click.Command(name, help=self.lazy[name][1])
        return cmd.get_short_help_str(limit)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click.Group's, but a command not imported yet is listed from the table (never hidden)."""
        names = [n for n in self.list_commands(ctx) if n not in self.commands or not self.commands[n].hidden]
        if names:
            limit = formatter.width - 6 - max(len(n) for n in names)
            with formatter.section("Commands"):
                formatter.write_dl([(n, self.listed_help(n, limit)) for n in names])


class PocsyncGroup(LazyGroup):
    """The root group: every error becomes one line ``error (reason): message`` and a non-zero exit."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except NO_ARGS_IS_HELP as exc:  # a group alone: its help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", "stopped by the user", 130)
        except click.UsageError as exc:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            _fail("usage", exc.format_message() + hint, exc.exit_code)
        except click.ClickException as exc:
            _fail("usage", exc.format_message(), exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        common = sys.modules.get("pocsync.cli.common")  # loaded by a command's module (it fits itself then)
        if common is not None:
            common.fit_to_output(common.console, common.err_console)
        try:
            return super().invoke(ctx)
        except PocsyncError as exc:
            _fail(exc.reason, exc.message)
        except BrokenPipeError:  # the reader went away (`pocsync log export | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except OSError as exc:  # a file named on the command line that cannot be read or written
            if exc.filename:
                _fail("file_error", f"{exc.filename}: {exc.strerror or exc}")
            _fail("os_error", str(exc) or type(exc).__name__)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug; never a raw traceback for a user
            if os.environ.get("POCSYNC_TRACEBACK"):
                raise
            _fail(
                "internal_error",
                f"{type(exc).__name__}: {exc} (a bug in pocsync; run again with "
                "POCSYNC_TRACEBACK=1 to see where, and report it)",
                EXIT_INTERNAL,
            )


def _fail(reason: str, message: str, code: int = EXIT_ERROR) -> NoReturn:
    """common.fail, imported only on the way out (it needs rich)."""
    from pocsync.cli.common import fail

    fail(reason, message, code)

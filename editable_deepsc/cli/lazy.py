"""A click group whose sub-commands are imported on first use (keeps ``--help`` fast)."""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """Click group over a ``{name: ("module:attr", "one-line help")}`` table.

    Every command it hands out has its numeric options bounded
    (:func:`~editable_deepsc.cli.options.bound_numeric_options`).
    """

    def __init__(self, *args, lazy: dict[str, tuple[str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy if lazy is not None else {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from editable_deepsc.cli.options import bound_numeric_options

        if name in self.commands:
            return bound_numeric_options(self.commands[name])
        if name not in self.lazy:
            return None
        module, attr = self.lazy[name][0].split(":")
        return bound_numeric_options(getattr(importlib.import_module(module), attr))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                rows.append((name, self.commands[name].get_short_help_str()))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

"""The Typer application every command module registers on, and the entry point that turns errors
into one red line plus a hint (never a traceback)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

from amms_cli.cli.console import err, out, report_error
from amms_cli.errors import AmmsError
from amms_cli.version import __version__


def _without_flag_types(params: list[Any]) -> list[Any]:
    """Typer's help shows a `<bool>` type after every flag (`--help <bool>`); a flag takes no value,
    so its type column stays empty."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


class AmmsGroup(TyperGroup):
    """The `amms` command group: Typer's, with flags shown without a type in every help screen."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _without_flag_types(command.get_params(ctx))
        return command


app = typer.Typer(
    name="amms",
    cls=AmmsGroup,
    help="Another Multi Model Server: turn a trained model file into a versioned, live-reloading HTTP service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"amms {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Show the version and exit.")
    ] = False,
) -> None:
    """Another Multi Model Server: turn a trained model file into a versioned, live-reloading HTTP service."""


ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The config file.", envvar="AMMS_CONFIG", show_default=True)
]
DEFAULT_CONFIG = Path("amms.json")


def main() -> None:
    try:
        app()
    except AmmsError as exc:
        report_error(exc)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("AMMS_DEBUG"):
            raise
        report_error(AmmsError(f"unexpected {type(exc).__name__}: {exc}", hint="set AMMS_DEBUG=1 for the traceback"))
        sys.exit(2)

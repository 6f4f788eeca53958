"""The Typer application every command module registers on, and the entry point that turns errors
into one red line plus a hint (never a traceback)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from amms_cli.cli.console import err, report_error
from amms_cli.errors import AmmsError

app = typer.Typer(
    name="amms",
    help="Another Multi Model Server: turn a trained model file into a versioned, live-reloading HTTP service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

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

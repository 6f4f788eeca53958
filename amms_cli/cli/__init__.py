"""The `amms` command line: one module of commands per area, all registered on one Typer app."""

from amms_cli.cli import build, project, serve  # noqa: F401 - registers their commands
from amms_cli.cli.app import app, main

__all__ = ["app", "main"]

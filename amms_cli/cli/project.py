"""Project commands: init, add-model, bump-version, list, status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from amms_cli.cli.app import DEFAULT_CONFIG, ConfigOption, app
from amms_cli.cli.console import err, human_size, out, warn
from amms_cli.cli.serve import parse_size
from amms_cli.errors import AmmsError
from amms_cli.loaders import FORMATS
from amms_cli.project import authoring, listing
from amms_cli.repository.versions import BumpPart

TrustOption = Annotated[
    str | None,
    typer.Option(
        help="skops files: comma-separated types to trust beyond skops' defaults (their names are in the "
        "refusal), recorded in the manifest. Default for bump-version: the previous version's."
    ),
]
BudgetOption = Annotated[
    str | None,
    typer.Option(
        envvar="AMMS_MEMORY_BUDGET",
        metavar="SIZE",
        help="The servers' --memory-budget (e.g. 4GiB): a model that takes more memory once loaded, as its trial "
        "load measures, is refused before anything is published.",
    ),
]


def parse_trust(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Project folder (created if missing).")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing amms.json.")] = False,
) -> None:
    """Create amms.json (an empty list) and a models/ folder.

    Example: [bold]amms init my-project[/]
    """
    result = authoring.init_project(directory, force)
    out.print(f"Created {escape(str(result.config_path))} and {escape(str(result.models_dir))}/")
    out.print("Next: [bold]amms add-model ./clf.pkl --name my_model[/]")


@app.command("add-model")
def add_model(
    path: Annotated[
        Path,
        typer.Argument(help="Model file (pickle, cloudpickle, joblib, .onnx) or a folder with model.py."),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name: lowercase letters, digits, _ . -")],
    version: Annotated[str, typer.Option(help="First version.")] = "1.0.0",
    servable: Annotated[
        str | None,
        typer.Option(help="Input adapter: text_input, tabular, ndarray, custom. Default: guessed from the model."),
    ] = None,
    aspired: Annotated[
        str | None, typer.Option(help="Version pattern to serve: 1.x, 1.2.x, 1.2.3, latest. Default: MAJOR.x")
    ] = None,
    example: Annotated[
        str | None,
        typer.Option(
            help="Example input: JSON, a JSON file, or a .csv of rows; checked, recorded for docs and smoke checks."
        ),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help=f"Override format detection: {', '.join(FORMATS)}.")
    ] = None,
    trust: TrustOption = None,
    memory_budget: BudgetOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Publish a model file as version 1.0.0 and add it to the config.

    The model is loaded once in a separate process to prove it loads (and predicts the example).

    Example: [bold]amms add-model ./clf.pkl --name simple_text --example '["hello"]'[/]
    """
    if fmt is not None and fmt not in FORMATS:
        raise AmmsError(f"--format {fmt} is not a format", hint=f"use one of {', '.join(FORMATS)}")
    with err.status(f"Checking {escape(path.name)} in a separate process…"):
        result = authoring.add_model(
            config,
            path,
            name=name,
            version=version,
            servable=servable,
            aspired=aspired,
            example=authoring.parse_example(example),
            fmt=fmt,
            trust=parse_trust(trust),
            memory_budget=parse_size(memory_budget, "--memory-budget"),
        )
    manifest = result.published.manifest
    assert manifest is not None
    if result.resumed:
        out.print(f"Completed an interrupted add-model: {escape(str(result.published.path))} was already published")
    out.print(
        f"Published [bold]{escape(name)}[/] {result.published.version} "
        f"({escape(manifest.framework)} {escape((manifest.model_class or '').rsplit('.', 1)[-1])}, "
        f"loader {manifest.loader}, servable {manifest.servable_name}) → {escape(str(result.published.path))}"
    )
    out.print(f"Added to {escape(str(config))}: serves {escape(result.entry.aspired_version)}")
    if manifest.input.smoke_example is None:
        warn(
            f"no example recorded for {name}: its loads are not smoke-checked and /docs shows none; "
            "publish with --example JSON (or a .csv of rows) to record one"
        )


@app.command("bump-version")
def bump_version(
    name: Annotated[str, typer.Argument(help="A configured model.")],
    path: Annotated[
        Path | None, typer.Argument(help="New model file; without it the current artifact is republished.")
    ] = None,
    major: Annotated[bool, typer.Option("--major", help="Bump MAJOR (1.2.3 → 2.0.0).")] = False,
    minor: Annotated[bool, typer.Option("--minor", help="Bump MINOR (1.2.3 → 1.3.0).")] = False,
    patch: Annotated[bool, typer.Option("--patch", help="Bump PATCH (1.2.3 → 1.2.4), the default.")] = False,
    aspire: Annotated[
        bool,
        typer.Option("--aspire", help="Update the entry's aspired pattern so the new version is served."),
    ] = False,
    example: Annotated[
        str | None, typer.Option(help="Example input (JSON or file); default: the previous version's.")
    ] = None,
    trust: TrustOption = None,
    memory_budget: BudgetOption = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Publish the next version of a model.

    Example: [bold]amms bump-version simple_text ./clf2.pkl --minor[/]
    """
    if major + minor + patch > 1:
        raise AmmsError("choose one of --major, --minor, --patch", hint="--patch is the default")
    part: BumpPart = "major" if major else "minor" if minor else "patch"
    with err.status(f"Publishing the next {part} version of {escape(name)}…"):
        result = authoring.bump_version(
            config,
            name,
            source=path,
            part=part,
            aspire=aspire,
            example=authoring.parse_example(example),
            trust=parse_trust(trust),
            memory_budget=parse_size(memory_budget, "--memory-budget"),
        )
    before = str(result.previous) if result.previous else "none"
    out.print(f"{escape(name)} {before} → [bold]{result.published.version}[/]")
    if result.not_served_reason:
        warn(result.not_served_reason)


def _list(config: Path) -> None:
    rows = listing.list_models(config)
    if not rows:
        out.print(f"No models in {escape(str(config))}. Add one with [bold]amms add-model PATH --name NAME[/]")
        return
    show_problems = any(status.warnings or any(r.problem for r in status.versions) for status in rows)
    table = Table(title=f"Models in {config}", show_edge=False)
    longest = {
        "model": max(len(status.entry.model_name) for status in rows),
        "framework": max((len(r.framework or "-") for status in rows for r in status.versions), default=1),
    }
    # Narrow terminals wrap the cells; the model's name and its framework are never cut short.
    # "example": whether the served version has a recorded example, its smoke check at every load.
    for column in ("model", "on disk", "aspired", "serves", "framework", "example", "size", "problems"):
        if column == "problems" and not show_problems:
            continue
        table.add_column(column, overflow="fold", min_width=min(longest.get(column, 0), 32) or None)
    for status in rows:
        newest = status.versions[-1] if status.versions else None
        served = next((row for row in status.versions if row.version == status.served), None)
        problems = [r.problem for r in status.versions if r.problem] + status.warnings
        cells = [
            escape(status.entry.model_name),
            ", ".join(str(r.version) for r in status.versions) or "-",
            escape(status.entry.aspired_version),
            str(status.served) if status.served else "[red]none[/]",
            escape(newest.framework or "-") if newest else "-",
            ("yes" if served.smoke_check else "none") if served else "-",
            human_size(sum(r.size for r in status.versions)),
        ]
        if show_problems:
            cells.append("[red]" + escape("; ".join(problems)) + "[/]" if problems else "")
        table.add_row(*cells)
    out.print(table)


@app.command("list")
def list_command(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Show configured models, their versions on disk and problems (checksums are verified).

    Example: [bold]amms list[/]
    """
    _list(config)


@app.command("status")
def status(
    url: Annotated[
        str | None,
        typer.Option(help="A running server, e.g. http://127.0.0.1:8000; without it, the repository on disk."),
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Like `list`; with --url, the live server's view of models and versions.

    Example: [bold]amms status --url http://127.0.0.1:8000[/]
    """
    if url is None:
        _list(config)
        return
    from amms_cli.cli.live_status import fetch_status, render_status

    out.print(render_status(url, fetch_status(url)))

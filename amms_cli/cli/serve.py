"""`amms serve`: run the server for every configured model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ByteSize, TypeAdapter, ValidationError
from rich.markup import escape

from amms_cli.cli.app import DEFAULT_CONFIG, ConfigOption, app
from amms_cli.cli.console import err
from amms_cli.errors import AmmsError
from amms_cli.loaders import FORMATS, LOADERS
from amms_cli.project.config import load_config
from amms_cli.serving.settings import ServeSettings

DEFAULT = ServeSettings.default
SAFE_FORMATS = [name for name in FORMATS if not LOADERS[name].runs_code]
CODE_FORMATS = [name for name in FORMATS if LOADERS[name].runs_code]
MIB = 1024 * 1024


def parse_size(text: str | None, option: str) -> int | None:
    """'4GiB', '512MiB', '1.5GB' or a number of bytes."""
    if text is None:
        return None
    try:
        size = int(TypeAdapter(ByteSize).validate_python(text.strip()))
    except ValidationError:
        raise AmmsError(f"{option}: cannot read '{text}' as a size", hint="write it like 4GiB, 512MiB or 2GB") from None
    if size <= 0:
        raise AmmsError(f"{option} must be more than 0 bytes")
    return size


def parse_allowed(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(names - set(FORMATS))
    if unknown or not names:
        raise AmmsError(
            f"--allow-frameworks: unknown loader '{unknown[0] if unknown else text}'",
            hint=f"use a comma-separated list of {', '.join(FORMATS)}",
        )
    return names


@app.command()
def serve(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the server to the network.")] = DEFAULT(
        "host"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = DEFAULT("port"),
    workers: Annotated[int, typer.Option(help="Worker processes (each loads every model).")] = DEFAULT("workers"),
    watch: Annotated[bool, typer.Option("--watch", help="Reload new versions and config edits live.")] = DEFAULT(
        "watch"
    ),
    poll: Annotated[
        float | None, typer.Option(help="Watch by polling every N seconds (network shares, some bind mounts).")
    ] = DEFAULT("poll_s"),
    body_limit_mib: Annotated[float, typer.Option("--body-limit-mib", help="Largest request body accepted.")] = DEFAULT(
        "body_limit_bytes"
    )
    / MIB,
    drain_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds to let in-flight requests finish on shutdown; on unload, when to warn that a "
            "retired version is still busy (its requests always finish on it)."
        ),
    ] = DEFAULT("drain_timeout_s"),
    predict_threads: Annotated[
        int,
        typer.Option(
            help="Threads shared by ONNX and custom models, and as many lanes for pickled models (each predicts "
            "on one lane, one call at a time; up to N pickled models have a lane each, more share them)."
        ),
    ] = DEFAULT("predict_threads"),
    request_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a client may take to send a whole request (slow clients are cut off), and a request "
            "may wait for its model to load on demand (then 503 with Retry-After)."
        ),
    ] = DEFAULT("request_timeout_s"),
    max_loaded_models: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="AMMS_MAX_LOADED_MODELS",
            help="Keep at most N model versions in memory: models load on their first request and the least "
            "recently used idle one is evicted to make room (keep_loaded models count, and are never evicted). "
            "With --workers W, each worker keeps N/W.",
        ),
    ] = None,
    memory_budget: Annotated[
        str | None,
        typer.Option(
            envvar="AMMS_MEMORY_BUDGET",
            metavar="SIZE",
            help="Keep the loaded versions within SIZE (e.g. 4GiB, 512MiB) of memory, each counted as what its load "
            "added to the process; like --max-loaded-models, models then load on demand. With --workers W, each "
            "worker keeps SIZE/W.",
        ),
    ] = None,
    allow_frameworks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated loaders to allow; the others' versions are refused (FAILED). Formats that run "
            f"no code when loaded: {', '.join(SAFE_FORMATS)}; the others run code from the file: "
            f"{', '.join(CODE_FORMATS)}."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = DEFAULT("log_level"),
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = DEFAULT("access_log"),
    docker: Annotated[
        bool, typer.Option("--docker", help="Run in a Docker container (built first if absent).")
    ] = False,
    tag: Annotated[str | None, typer.Option(help="With --docker: the image to run.")] = None,
) -> None:
    """Serve every model in the config over HTTP (native, TensorFlow Serving and v2 protocols).

    Set AMMS_ADMIN_TOKEN to enable the /admin management API.

    Example: [bold]amms serve --watch --port 8000[/]
    """
    if docker:
        from amms_cli.cli.docker_steps import serve_in_docker

        serve_in_docker(config, tag, port)
        return
    from amms_cli.http.run import run
    from amms_cli.serving.model_cache import Limits, check_limits

    loaded = load_config(config)  # a bad config is one clear line here, before uvicorn starts
    budget = parse_size(memory_budget, "--memory-budget")
    if max_loaded_models is not None or budget is not None:
        check_limits(loaded, Limits.of(max_loaded_models, budget, workers))
    settings = ServeSettings(
        config_path=Path(config).absolute(),
        host=host,
        port=port,
        workers=workers,
        watch=watch,
        poll_s=poll,
        body_limit_bytes=int(body_limit_mib * MIB),
        drain_timeout_s=drain_timeout,
        predict_threads=predict_threads,
        request_timeout_s=request_timeout,
        max_loaded_models=max_loaded_models,
        memory_budget_bytes=budget,
        allowed_loaders=parse_allowed(allow_frameworks),
        admin_token=os.environ.get("AMMS_ADMIN_TOKEN") or None,
        log_level=log_level.lower(),
        access_log=access_log,
    )
    mode = " (watching for changes)" if settings.watching else ""
    err.print(
        f"Serving {len(loaded.models)} model(s) from {escape(str(config))} on http://{host}:{port}{mode}; docs at /docs"
    )
    if settings.on_demand:
        err.print(f"Models load on their first request; {_limits_text(settings)}")
    run(settings)


def _limits_text(settings: ServeSettings) -> str:
    from amms_cli.loaders.footprint import format_bytes

    limits = []
    if settings.max_loaded_models is not None:
        limits.append(f"at most {settings.max_loaded_models} version(s) in memory")
    if settings.memory_budget_bytes is not None:
        limits.append(f"within {format_bytes(settings.memory_budget_bytes)}")
    share = f"; each of the {settings.workers} workers keeps a {settings.workers}th" if settings.workers > 1 else ""
    return ", ".join(limits) + f" (least recently used evicted first{share})"

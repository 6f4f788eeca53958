"""`amms build`: render a build context from Dockerfile.template and build it with the docker SDK.

The docker SDK is imported only when a Docker command runs (amms_cli.cli.docker_steps): importing it
adds warning filters to the process, and scikit-learn re-applies every filter for each tree a forest
predicts with, so `amms serve` would pay for it on every request (measured: a 100-tree forest took
15-25% longer per call)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from amms_cli.cli.app import DEFAULT_CONFIG, ConfigOption, app
from amms_cli.cli.console import err, human_size, out
from amms_cli.docker import context, render
from amms_cli.docker.context import BuildOptions
from amms_cli.project.config import load_config


class ModelsMode(StrEnum):
    copy = "copy"
    volume = "volume"


@app.command()
def build(
    tag: Annotated[str | None, typer.Option(help="Image NAME:TAG. Default: amms-<project folder>:latest.")] = None,
    base_image: Annotated[
        str, typer.Option(help="Base image with python3 and venv (python:3.11-slim or Debian's python3).")
    ] = render.DEFAULT_BASE_IMAGE,
    models: Annotated[
        ModelsMode,
        typer.Option(help="copy: models inside the image. volume: mount the models folder; new versions go live."),
    ] = ModelsMode.copy,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Rebuild every layer.")] = False,
    compose: Annotated[bool, typer.Option("--compose", help="Also write a docker-compose.yml.")] = False,
    k8s: Annotated[
        Path | None, typer.Option("--k8s", help="Also write Kubernetes manifests (and a KServe InferenceService) here.")
    ] = None,
    render_only: Annotated[
        bool,
        typer.Option(
            "--render-only",
            help="Write the build context (and the --compose / --k8s files) without a Docker engine; "
            "build it later with the docker build command printed.",
        ),
    ] = False,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Build a Docker image that serves the configured models, each framework pinned to the version the
    models were saved with. The rendered Dockerfile stays in .amms/build/ next to the config.

    Example: [bold]amms build --tag my-models:1.0 --models volume --compose[/]
    """
    plan = context.plan_build(load_config(config), BuildOptions(tag, base_image, models.value))
    templates = context.default_templates()
    if compose:
        out.print(f"Wrote {escape(str(context.write_compose(plan, templates)))}")
    if k8s is not None:
        written = context.write_k8s(plan, templates, k8s)
        out.print(f"Wrote {', '.join(escape(str(path)) for path in written)}")
    if render_only:
        with err.status("Writing the build context (amms wheel, Dockerfile, models)…"):
            context_dir = context.write_context(plan, templates)
        out.print(f"Wrote the build context {escape(str(context_dir))}")
        out.print(f"Build it: [bold]{escape(render.build_command(plan.spec, context_dir))}[/]")
        return
    from amms_cli.cli import docker_steps  # the docker SDK, only now (see the module docstring)

    info = docker_steps.build_image(plan, templates, no_cache)
    out.print(f"Image [bold]{escape(plan.spec.tag)}[/]  id {escape(info.id)}  size {human_size(info.size)}")
    out.print(f"Run it: [bold]{escape(render.run_command(plan.spec, plan.models_root))}[/]")

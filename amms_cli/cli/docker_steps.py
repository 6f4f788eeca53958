"""The Docker side of the CLI, imported only when a Docker command runs: building with a progress
display, and `serve_in_docker`, which `amms serve --docker` calls to run the image with the models
folder mounted."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import docker
from docker.models.containers import Container
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from amms_cli.cli.console import err, out
from amms_cli.docker import context, engine, render
from amms_cli.docker.context import BuildOptions, BuildPlan
from amms_cli.docker.engine import BuildDone, BuildFailed, BuildStep, ImageInfo, RunRequest
from amms_cli.docker.render import Templates
from amms_cli.errors import EngineError
from amms_cli.project.config import load_config


def build_image(plan: BuildPlan, templates: Templates, no_cache: bool) -> ImageInfo:
    """Connect to the engine and build the planned image, showing progress."""
    return build_with_progress(engine.connect(), plan, templates, no_cache)


def build_with_progress(
    client: docker.DockerClient, plan: BuildPlan, templates: Templates, no_cache: bool
) -> ImageInfo:
    """Write the context, build it while showing the steps, and return the image's id and size."""
    with err.status("Writing the build context (amms wheel, Dockerfile, models)…"):
        context_dir = context.write_context(plan, templates)
    started = time.monotonic()
    try:
        _show_build(engine.build_image(client, context_dir, plan.spec.tag, no_cache))
    except BuildFailed as exc:
        for line in exc.log_tail:
            err.print(f"[dim]│[/] {escape(line)}")
        raise
    info = engine.image_info(client, plan.spec.tag)
    if info is None:
        raise EngineError(f"the build finished but image {plan.spec.tag} is missing")
    err.print(f"Built {escape(plan.spec.tag)} in {time.monotonic() - started:.1f} s (context: {context_dir})")
    return info


def _show_build(events: Iterator[engine.BuildEvent]) -> None:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), TextColumn("[dim]{task.fields[line]}"), console=err) as progress:
        task = progress.add_task("docker build", total=None, line="")
        for event in events:
            if isinstance(event, BuildStep):
                label = _clip(event.instruction, 48)
                progress.update(task, total=event.total, completed=event.number - 1, description=escape(label))
                if not err.is_terminal:  # CI logs get one line per step instead of a live bar
                    err.print(f"Step {event.number}/{event.total}: {escape(event.instruction)}")
            elif isinstance(event, BuildDone):
                progress.update(task, completed=progress.tasks[0].total or 1, line="")
            else:
                progress.update(task, line=escape(_clip(event.line, 60)))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def serve_in_docker(config: Path, tag: str | None, port: int) -> None:
    """Run the image (built with `--models volume` first if absent) with the models folder mounted and
    `--watch` on, publish it on 127.0.0.1:PORT, stream its logs, and stop and remove it on Ctrl-C."""
    loaded = load_config(config)
    client = engine.connect()
    tag = render.check_reference(tag or render.default_tag(loaded.base_dir), "--tag")
    if engine.image_info(client, tag) is None:
        err.print(f"No image {escape(tag)} yet; building it with --models volume")
        plan = context.plan_build(loaded, BuildOptions(tag=tag, models_mode="volume"))
        build_with_progress(client, plan, context.default_templates(), no_cache=False)
    models_dir = context.models_root(loaded, required=True)
    assert models_dir is not None  # required=True raises instead
    container = engine.run_container(client, RunRequest(tag, port, models_dir=models_dir, args=("--watch",)))
    err.print(
        f"Container {container.short_id} serves {escape(tag)} on http://127.0.0.1:{port} with "
        f"{escape(str(models_dir))} mounted (new versions go live); Ctrl-C stops and removes it"
    )
    code = _follow_until_stopped(container)
    if code:
        raise EngineError(f"the container exited with code {code}", hint="its log is above")


def _follow_until_stopped(container: Container) -> int | None:
    """Stream logs until Ctrl-C/SIGTERM (None) or the container exits (its code); always remove it."""
    interrupted = False
    try:
        with _sigterm_as_interrupt():
            for line in engine.follow_logs(container):
                out.print(line, markup=False, highlight=False)
    except KeyboardInterrupt:
        interrupted = True
        err.print("Stopping the container…")
    finally:
        code = None if interrupted else engine.exit_code(container)
        engine.stop_and_remove(container)
    return code


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill PID` should clean up like Ctrl-C does, not leave a container running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

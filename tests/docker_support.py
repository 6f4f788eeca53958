"""Docker test support: an engine that skips the test when none answers (and fails it when
AMMS_REQUIRE_DOCKER=1, as in CI), and a tracker that always removes what a test made."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import docker
import httpx
import pytest
from docker.errors import DockerException
from docker.models.containers import Container
from docker.models.images import Image
from server_support import free_port, wait_until

from amms_cli.docker import engine
from amms_cli.docker.engine import RunRequest
from amms_cli.docker.render import STAGE_LABEL
from amms_cli.errors import EngineError

REQUIRE_ENV = "AMMS_REQUIRE_DOCKER"


def engine_or_skip() -> docker.DockerClient:
    try:
        return engine.connect()
    except EngineError as exc:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{exc.message} ({REQUIRE_ENV}=1, so Docker tests must not skip)")
        pytest.skip(f"{exc.message} (set {REQUIRE_ENV}=1 to fail instead)")


def serve_image(leftovers: DockerLeftovers, tag: str, timeout: float = 90) -> str:
    """Run `tag` on a free local port (removed with the other leftovers) and return its URL once
    /health/ready answers 200; the container's log tail fails the test otherwise."""
    port = free_port()
    container = leftovers.container(engine.run_container(leftovers.client, RunRequest(tag, port)))
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/health/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_until(ready, timeout=timeout, interval=0.2), container.logs().decode()[-3000:]
    return url


@contextlib.contextmanager
def tracked_leftovers() -> Iterator[DockerLeftovers]:
    """A tracker on a live engine (or skip / fail, see engine_or_skip) that removes what it saw, always."""
    tracker = DockerLeftovers(engine_or_skip())
    try:
        yield tracker
    finally:
        tracker.remove_all()


@dataclass
class DockerLeftovers:
    """Containers and images a test created; `remove_all` runs in a finalizer, whatever happened.
    Build-stage images (the dangling venv stage, labelled io.amms.stage) made since `started` go too."""

    client: docker.DockerClient
    started: float = field(default_factory=time.time)
    containers: list[Container] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def container(self, container: Container) -> Container:
        self.containers.append(container)
        return container

    def image(self, tag: str) -> str:
        self.images.append(tag)
        return tag

    def remove_all(self) -> None:
        for container in self.containers:
            with contextlib.suppress(EngineError, DockerException):
                engine.stop_and_remove(container, timeout=2)
        for tag in self.images:
            with contextlib.suppress(EngineError, DockerException):
                engine.remove_image(self.client, tag)
        self.remove_stage_images()
        self.client.close()

    def remove_stage_images(self) -> None:
        stages = self.client.images.list(all=True, filters={"label": f"{STAGE_LABEL}=venv"})
        ours = [image for image in stages if _created(image) >= self.started - 1]
        for image in sorted(ours, key=_created, reverse=True):  # children before parents
            with contextlib.suppress(DockerException):
                self.client.images.remove(image.id, force=True)


def _created(image: Image) -> float:
    """The image's creation time; the engine reports RFC 3339 with nanoseconds, e.g. 2026-11-24T19:48:01.12Z."""
    text = str(image.attrs.get("Created", ""))
    stamp = text.split(".")[0].rstrip("Z")
    try:
        return datetime.fromisoformat(stamp + "+00:00").timestamp()
    except ValueError:
        return 0.0

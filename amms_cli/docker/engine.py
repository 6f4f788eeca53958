"""Docker engine side effects through the docker SDK: connect, build with streamed output, inspect and
remove images, run a container with the models folder mounted, follow its logs, stop and remove it."""

from __future__ import annotations

import os
import re
import socket
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

from amms_cli.docker.render import MODELS_DIR, PORT
from amms_cli.errors import EngineError

DEFAULT_ENGINE_URL = "unix:///var/run/docker.sock"
TAIL_LINES = 25
_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_BUILT_RE = re.compile(r"^Successfully built ([0-9a-f]+)$")


class BuildFailed(EngineError):
    """A build step failed; `log_tail` holds the last lines that step printed."""

    def __init__(self, message: str, log_tail: tuple[str, ...], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.log_tail = log_tail


@dataclass(frozen=True)
class BuildStep:
    number: int
    total: int
    instruction: str


@dataclass(frozen=True)
class BuildOutput:
    line: str


@dataclass(frozen=True)
class BuildDone:
    image_id: str


BuildEvent = BuildStep | BuildOutput | BuildDone


@dataclass(frozen=True)
class ImageInfo:
    id: str
    size: int
    tags: tuple[str, ...]
    labels: dict[str, str]


def engine_url() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE_URL


def connect() -> docker.DockerClient:
    """A client that has answered a ping; an unreachable engine is one EngineError line."""
    url = engine_url()
    if url.startswith("unix://") and not _unix_socket_answers(url.removeprefix("unix://")):
        raise EngineError(f"Docker engine not reachable at {url} — is it running?")
    try:
        client = docker.from_env()
        client.ping()
    except (DockerException, requests.RequestException):
        raise EngineError(f"Docker engine not reachable at {url} — is it running?") from None
    return client


def _unix_socket_answers(path: str) -> bool:
    """Checked here because the SDK leaks the socket of a failed connect (a ResourceWarning)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def build_image(client: docker.DockerClient, context: Path, tag: str, no_cache: bool = False) -> Iterator[BuildEvent]:
    """Build `context` (which holds the Dockerfile) as `tag`, yielding steps and output as they stream."""
    try:
        chunks = client.api.build(path=str(context), tag=tag, rm=True, forcerm=True, nocache=no_cache, decode=True)
        try:
            yield from parse_build_stream(chunks, context)
        except BuildFailed:
            for _ in chunks:  # read to the end so the engine's connection is released, not leaked
                pass
            raise
    except (DockerException, requests.RequestException) as exc:
        raise EngineError(f"docker build of {tag} failed: {_reason(exc)}") from None


def parse_build_stream(chunks: Iterable[dict[str, Any]], context: Path) -> Iterator[BuildEvent]:
    """Turn the engine's decoded JSON chunks into events; an `error` chunk raises BuildFailed with the
    failing step and the last lines it printed."""
    step: BuildStep | None = None
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    image_id = None
    pending = ""
    for chunk in chunks:
        if "error" in chunk:
            tail.extend(line for line in pending.splitlines() if line.strip())
            raise _build_failed(chunk, step, tuple(tail), context)
        if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        pending += chunk.get("stream", "")
        *lines, pending = pending.split("\n")
        for line in (text.rstrip("\r") for text in lines):
            if match := _STEP_RE.match(line):
                step = BuildStep(int(match[1]), int(match[2]), match[3])
                tail.clear()
                yield step
            elif line.strip():
                image_id = image_id or _built_id(line)  # the aux chunk's full id wins over the short one
                tail.append(line)
                yield BuildOutput(line)
    if image_id is None:
        raise BuildFailed("docker build ended without an image", tuple(tail))
    yield BuildDone(image_id)


def _built_id(line: str) -> str | None:
    match = _BUILT_RE.match(line)
    return match[1] if match else None


def _build_failed(chunk: dict[str, Any], step: BuildStep | None, tail: tuple[str, ...], context: Path) -> BuildFailed:
    reason = str((chunk.get("errorDetail") or {}).get("message") or chunk["error"]).strip()
    where = f" at step {step.number}/{step.total} ({_shorten(step.instruction)})" if step else ""
    return BuildFailed(
        f"docker build failed{where}: {reason}",
        tail,
        hint=f"the rendered Dockerfile is {context / 'Dockerfile'}; the step's output is above",
    )


def _shorten(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def image_info(client: docker.DockerClient, tag: str) -> ImageInfo | None:
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return None
    except (DockerException, requests.RequestException) as exc:
        raise EngineError(f"cannot inspect image {tag}: {_reason(exc)}") from None
    attrs = image.attrs
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return ImageInfo(image.id, int(attrs.get("Size", 0)), tuple(image.tags), dict(labels))


def remove_image(client: docker.DockerClient, tag: str) -> None:
    """Remove the image and its now-unused parent layers; a missing image is not an error."""
    try:
        client.images.remove(tag, force=True)
    except ImageNotFound:
        pass
    except (DockerException, requests.RequestException) as exc:
        raise EngineError(f"cannot remove image {tag}: {_reason(exc)}") from None


@dataclass(frozen=True)
class RunRequest:
    tag: str
    host_port: int
    host_ip: str = "127.0.0.1"
    models_dir: Path | None = None  # mounted read-only over the image's models folder
    args: tuple[str, ...] = ()  # appended to the image's `amms serve` entrypoint
    name: str | None = None


def run_container(client: docker.DockerClient, request: RunRequest) -> Container:
    volumes = {}
    if request.models_dir is not None:
        volumes[str(request.models_dir.absolute())] = {"bind": MODELS_DIR, "mode": "ro"}
    try:
        return client.containers.run(
            request.tag,
            command=list(request.args),
            detach=True,
            name=request.name,
            ports={f"{PORT}/tcp": (request.host_ip, request.host_port)},
            volumes=volumes,
            labels={"io.amms.managed": "true"},
        )
    except (DockerException, requests.RequestException) as exc:
        raise EngineError(f"cannot start a container from {request.tag}: {_reason(exc)}") from None


def follow_logs(container: Container) -> Iterator[str]:
    """The container's output line by line until it stops."""
    pending = b""
    for chunk in container.logs(stream=True, follow=True):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace")


def exit_code(container: Container) -> int | None:
    """The exit code of a stopped container; None while it runs."""
    try:
        container.reload()
    except NotFound:
        return None
    if container.status in {"exited", "dead"}:
        return int(container.attrs.get("State", {}).get("ExitCode", 0))
    return None


def stop_and_remove(container: Container, timeout: int = 10) -> None:
    """SIGTERM (the server drains in-flight requests), SIGKILL after `timeout` s, then remove."""
    try:
        container.stop(timeout=timeout)
    except NotFound:
        return
    except (DockerException, requests.RequestException):
        pass  # removal below forces it
    try:
        container.remove(force=True)
    except NotFound:
        pass
    except (DockerException, requests.RequestException) as exc:
        raise EngineError(f"cannot remove container {container.short_id}: {_reason(exc)}") from None

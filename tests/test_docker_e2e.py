"""End to end with a real engine: init → add-model → `amms build --models volume` → run the container →
predict through the published port → publish a new version into the mounted folder → the running
container serves it within 5 s, without a restart. Also `amms serve --docker` stopped with Ctrl-C.
Image, build-stage images and containers are always removed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from docker_support import DockerLeftovers, tracked_leftovers
from factories import TABULAR_EXAMPLE
from projects import Project, amms_argv, amms_env
from server_support import free_port, wait_until

from amms_cli.docker import engine
from amms_cli.docker.engine import RunRequest

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

NAME = "iris"


def run(project: Project, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        amms_argv(*args), cwd=project.root, env=amms_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"amms {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def leftovers() -> Iterator[DockerLeftovers]:
    with tracked_leftovers() as tracker:
        yield tracker


@pytest.fixture(scope="module")
def volume_image(
    tmp_path_factory: pytest.TempPathFactory, artifacts: dict[str, Path], leftovers: DockerLeftovers
) -> tuple[Project, str]:
    """A project with one scikit-learn model and its `--models volume` image, built once (cold)."""
    project = Project(tmp_path_factory.mktemp("e2e") / "proj")
    project.root.mkdir()
    run(project, "init")
    run(project, "add-model", str(artifacts["pickle"]), "--name", NAME)
    tag = leftovers.image(f"amms-e2e-{uuid.uuid4().hex[:8]}:test")
    started = time.monotonic()
    built = run(project, "build", "--models", "volume", "--tag", tag, timeout=1000)
    print(f"\ncold build of {tag}: {time.monotonic() - started:.1f} s")
    assert f"-v {project.models.absolute()}:/srv/amms/models:ro {tag}" in built.stdout
    return project, tag


def predict(url: str) -> dict[str, object]:
    response = httpx.post(f"{url}/models/{NAME}/predict", json={"inputs": TABULAR_EXAMPLE}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_image_is_labelled_non_root_and_healthchecked(
    volume_image: tuple[Project, str], leftovers: DockerLeftovers
) -> None:
    _project, tag = volume_image
    info = engine.image_info(leftovers.client, tag)
    assert info is not None
    assert info.labels["io.amms.models"] == f"{NAME}=1.0.0"
    assert info.labels["io.amms.models-mode"] == "volume"
    assert "scikit-learn==" in info.labels["io.amms.requirements"]
    config = leftovers.client.images.get(tag).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert "8000/tcp" in config["ExposedPorts"]
    assert "/health/ready" in " ".join(config["Healthcheck"]["Test"])
    print(f"\nimage size: {info.size / 2**20:.1f} MiB")


def test_a_version_published_into_the_mounted_folder_goes_live_without_restart(
    volume_image: tuple[Project, str], leftovers: DockerLeftovers
) -> None:
    project, tag = volume_image
    port = free_port()
    request = RunRequest(tag, port, models_dir=project.models, args=("--watch",))
    container = leftovers.container(engine.run_container(leftovers.client, request))
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: ready(url), timeout=90, interval=0.2), container.logs().decode()[-3000:]
        first = predict(url)
        assert first["model"] == NAME and first["version"] == "1.0.0"
        container.reload()
        started_at, restarts = container.attrs["State"]["StartedAt"], container.attrs["RestartCount"]

        run(project, "bump-version", NAME)
        published = time.monotonic()
        expected = project.versions(NAME)[-1]
        assert expected == "1.0.1"
        assert wait_until(lambda: predict(url)["version"] == expected, timeout=5, interval=0.05), (
            container.logs().decode()[-3000:]
        )
        print(f"\nnew version live {time.monotonic() - published:.2f} s after publish")

        container.reload()
        assert container.status == "running"
        assert container.attrs["State"]["StartedAt"] == started_at
        assert container.attrs["RestartCount"] == restarts
    finally:
        engine.stop_and_remove(container, timeout=2)


def test_amms_serve_docker_streams_logs_and_removes_the_container_on_ctrl_c(
    volume_image: tuple[Project, str], leftovers: DockerLeftovers
) -> None:
    project, tag = volume_image
    port = free_port()
    log = project.root / f"serve-docker-{port}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            amms_argv("serve", "--docker", "--tag", tag, "--port", str(port)),
            cwd=project.root,
            env=amms_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: ready(url), timeout=90, interval=0.2), log.read_text()
        assert predict(url)["model"] == NAME
        ours = {"label": "io.amms.managed=true", "ancestor": tag}
        assert len(leftovers.client.containers.list(filters=ours)) == 1
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for container in leftovers.client.containers.list(all=True, filters={"ancestor": tag}):
            leftovers.container(container)
    output = log.read_text()
    assert "Uvicorn running on http://0.0.0.0:8000" in output  # the container's log, streamed
    assert "Stopping the container" in output
    assert leftovers.client.containers.list(all=True, filters={"ancestor": tag}) == []

"""amms installed the normal way: a wheel built from this tree, installed (not editable) into a new
virtualenv in a temporary folder with no checkout on its path, does the whole journey: init,
add-model, `build --render-only` (no engine needed), `build` with the real engine, `docker run`, and
a prediction. The image must run exactly the amms that built it: the wheel is given a version no
other amms has, and the container's `amms --version` must print it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from docker_support import DockerLeftovers, serve_image, tracked_leftovers
from factories import iris_classifier, save_pickle

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1500)]

CHECKOUT = Path(__file__).resolve().parent.parent
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@dataclass(frozen=True)
class Installed:
    """A virtualenv holding the amms wheel, and a folder outside any checkout to work in."""

    venv: Path
    work: Path
    version: str

    def amms(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        env["COLUMNS"] = "200"
        return subprocess.run(
            [str(self.venv / "bin" / "amms"), *args],
            cwd=cwd or self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )


def _wheel_with_unique_version(tmp: Path) -> tuple[Path, str]:
    """Build a wheel of this tree whose version no other amms has (the checkout's, plus a local label)."""
    source = tmp / "source"
    shutil.copytree(CHECKOUT / "amms_cli", source / "amms_cli", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(CHECKOUT / name, source / name)
    init = source / "amms_cli" / "version.py"
    base = version("amms_cli").split("+")[0]
    unique = f"{base}+wheeltest.{uuid.uuid4().hex[:8]}"
    init.write_text(init.read_text().replace(f'__version__ = "{base}"', f'__version__ = "{unique}"'))
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp / "dist").glob("amms_cli-*.whl")
    return wheel, unique


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    wheel, unique = _wheel_with_unique_version(tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # the model's libraries at the versions this test process has, so the pins match the model file
    libraries = [f"{name}=={version(name)}" for name in ("scikit-learn", "numpy", "scipy", "joblib")]
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel), *libraries],
        capture_output=True,
        text=True,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    work = tmp / "work"
    work.mkdir()
    return Installed(venv, work, unique)


@pytest.fixture(scope="module")
def leftovers() -> Iterator[DockerLeftovers]:
    with tracked_leftovers() as tracker:
        yield tracker


def test_the_installed_amms_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    probe = "import amms_cli, sys; print(amms_cli.__file__); print(any(sys.argv[1] in p for p in sys.path))"
    python = installed.venv / "bin" / "python"
    command = [str(python), "-c", probe, str(CHECKOUT)]
    shown = subprocess.run(command, cwd=installed.work, capture_output=True, text=True, check=True)
    location, checkout_on_path = shown.stdout.split()
    assert Path(location).is_relative_to(installed.venv), location
    assert not Path(location).is_relative_to(CHECKOUT)
    assert checkout_on_path == "False"
    assert installed.amms("--version").stdout.strip() == f"amms {installed.version}"


def test_render_only_writes_everything_without_an_engine(installed: Installed) -> None:
    project = installed.work / "render"
    assert installed.amms("init", str(project)).returncode == 0
    save_pickle(installed.work / "iris.pkl", iris_classifier())
    added = installed.amms("add-model", str(installed.work / "iris.pkl"), "--name", "iris", cwd=project)
    assert added.returncode == 0, added.stderr
    env_without_engine = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run(
        [str(installed.venv / "bin" / "amms"), "build", "--render-only", "--compose", "--k8s", "k8s", "--tag", "r:1"],
        cwd=project,
        env={**os.environ, **env_without_engine},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    context = project / ".amms" / "build"
    assert (context / "Dockerfile").read_text().startswith("# Rendered by `amms build`")
    assert (project / "docker-compose.yml").is_file()
    assert {path.name for path in (project / "k8s").iterdir()} >= {"deployment.yaml", "service.yaml"}
    assert f"docker build --tag r:1 {context}" in result.stdout
    (wheel,) = (context / "wheels").glob("amms_cli-*.whl")
    with zipfile.ZipFile(wheel) as archive:  # the installed distribution, repacked: templates included
        names = archive.namelist()
    assert {"amms_cli/templates/Dockerfile.template", "amms_cli/templates/.dockerignore", "amms_cli/py.typed"} <= set(
        names
    )
    assert f"amms_cli-{installed.version}.dist-info/RECORD" in names


def test_the_image_runs_the_amms_that_built_it(installed: Installed, leftovers: DockerLeftovers) -> None:
    project = installed.work / "image"
    assert installed.amms("init", str(project)).returncode == 0
    save_pickle(installed.work / "iris2.pkl", iris_classifier())
    example = json.dumps(ROWS[:1])
    added = installed.amms(
        "add-model", str(installed.work / "iris2.pkl"), "--name", "iris", "--example", example, cwd=project
    )
    assert added.returncode == 0, added.stderr
    tag = leftovers.image(f"amms-wheel-{uuid.uuid4().hex[:8]}:test")
    built = installed.amms("build", "--tag", tag, cwd=project)
    assert built.returncode == 0, built.stdout + built.stderr[-3000:]

    shown = leftovers.client.containers.run(tag, entrypoint=["amms", "--version"], remove=True)
    assert shown.decode().strip() == f"amms {installed.version}"

    url = serve_image(leftovers, tag)
    answer = httpx.post(f"{url}/models/iris/predict", json={"inputs": ROWS}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"] == iris_classifier().predict(ROWS).tolist()

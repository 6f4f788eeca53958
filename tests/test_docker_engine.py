"""The engine side of `amms build`: an unreachable engine is one line, the build stream becomes steps and
output, and a failed build reports the failing step with its log tail (for real when an engine answers)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_support import DockerLeftovers, tracked_leftovers
from projects import Project, amms_argv, amms_env, error_of

from amms_cli.docker import engine
from amms_cli.docker.engine import BuildDone, BuildFailed, BuildOutput, BuildStep
from amms_cli.errors import EngineError
from amms_cli.project import authoring
from amms_cli.repository.manifest import read_manifest, write_manifest


@pytest.fixture
def dead_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"unix://{tmp_path / 'no-engine.sock'}"
    monkeypatch.setenv("DOCKER_HOST", url)
    return url


@pytest.fixture
def one_model(project: Project, artifacts: dict[str, Path]) -> Project:
    authoring.add_model(project.config, artifacts["pickle"], name="iris")
    return project


def amms(project: Project, *args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        amms_argv(*args), cwd=project.root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


# --- no engine ----------------------------------------------------------------------------------------


def test_an_unreachable_engine_is_one_clear_error(dead_socket: str) -> None:
    with pytest.raises(EngineError) as caught:
        engine.connect()
    assert caught.value.message == f"Docker engine not reachable at {dead_socket} — is it running?"
    assert caught.value.hint is None


def test_the_default_engine_address_is_the_docker_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert engine.engine_url() == "unix:///var/run/docker.sock"


def test_amms_build_without_an_engine_prints_one_line_and_exits_1(one_model: Project, tmp_path: Path) -> None:
    url = f"unix://{tmp_path / 'no-engine.sock'}"
    result = amms(one_model, "build", env=amms_env(DOCKER_HOST=url))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [f"error: Docker engine not reachable at {url} — is it running?"]


def test_conflicting_pins_stop_the_build_before_the_engine_is_asked(
    one_model: Project, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    authoring.add_model(one_model.config, artifacts["joblib"], name="other")
    folder = one_model.models / "other" / "1.0.0"
    manifest = read_manifest(folder)
    write_manifest(folder, manifest.model_copy(update={"requirements": {"scikit-learn": "1.5.2"}}))
    result = amms(one_model, "build", env=amms_env(DOCKER_HOST=f"unix://{tmp_path / 'no-engine.sock'}"))
    message, hint = error_of(result)
    assert message.startswith("conflicting pins for scikit-learn: iris 1.0.0 was saved with ")
    assert message.endswith(", other 1.0.0 with 1.5.2")
    assert hint is not None
    assert not (one_model.root / ".amms").exists()


# --- the build stream ---------------------------------------------------------------------------------

STREAM = [
    {"stream": "Step 1/3 : FROM python:3.11-slim\n"},
    {"stream": " ---> 3666c7b895b8\n"},
    {"stream": "Step 2/3 : RUN pip install -r req"},
    {"stream": "uirements.txt\n"},
    {"stream": " ---> Running in 1f2e\n"},
    {"stream": "Collecting numpy==2.4.6\nInstalling collected packages: numpy\n"},
    {"stream": " ---> 9a8b7c6d5e4f\n"},
    {"stream": 'Step 3/3 : LABEL io.amms.models="iris=1.0.0"\n'},
    {"aux": {"ID": "sha256:" + "ab" * 32}},
    {"stream": "Successfully built abababababab\n"},
    {"stream": "Successfully tagged amms-demo:latest\n"},
]


def test_the_stream_becomes_steps_output_and_the_image_id() -> None:
    events = list(engine.parse_build_stream(STREAM, Path("/ctx")))
    steps = [e for e in events if isinstance(e, BuildStep)]
    assert [(s.number, s.total) for s in steps] == [(1, 3), (2, 3), (3, 3)]
    assert steps[1].instruction == "RUN pip install -r requirements.txt"  # split across two chunks
    assert BuildOutput("Collecting numpy==2.4.6") in events
    assert events[-1] == BuildDone("sha256:" + "ab" * 32)


FAILING = [
    {"stream": "Step 1/3 : FROM python:3.11-slim\n"},
    {"stream": "Step 2/3 : RUN echo earlier step\n"},
    {"stream": "earlier step\n"},
    {"stream": "Step 3/3 : RUN pip install --requirement /tmp/amms/requirements.txt\n"},
    {"stream": " ---> Running in 5e6f\n"},
    *({"stream": f"line {n}\n"} for n in range(40)),
    {"stream": "ERROR: No matching distribution found for numpy==1.0.0"},
    {
        "errorDetail": {"code": 1, "message": "The command '/bin/sh -c pip install' returned a non-zero code: 1"},
        "error": "The command '/bin/sh -c pip install' returned a non-zero code: 1",
    },
]


def test_an_error_raises_with_the_failing_step_and_its_last_lines() -> None:
    with pytest.raises(BuildFailed) as caught:
        list(engine.parse_build_stream(FAILING, Path("/ctx")))
    failure = caught.value
    assert failure.message == (
        "docker build failed at step 3/3 (RUN pip install --requirement /tmp/amms/requirements.txt): "
        "The command '/bin/sh -c pip install' returned a non-zero code: 1"
    )
    assert failure.log_tail[-1] == "ERROR: No matching distribution found for numpy==1.0.0"
    assert len(failure.log_tail) == engine.TAIL_LINES
    assert "earlier step" not in failure.log_tail  # only the failing step's output
    assert failure.hint == "the rendered Dockerfile is /ctx/Dockerfile; the step's output is above"


def test_a_stream_that_ends_without_an_image_is_a_failure() -> None:
    with pytest.raises(BuildFailed, match="ended without an image"):
        list(engine.parse_build_stream([{"stream": "Step 1/1 : FROM x\n"}], Path("/ctx")))


# --- with a real engine -------------------------------------------------------------------------------


@pytest.fixture
def leftovers() -> Iterator[DockerLeftovers]:
    with tracked_leftovers() as tracker:
        yield tracker


@pytest.mark.docker
def test_a_real_failed_build_reports_its_step_and_tail(tmp_path: Path, leftovers: DockerLeftovers) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11-slim\nRUN echo preparing && echo 'something went wrong here' && exit 3\n"
    )
    tag = leftovers.image("amms-test-failed-build:never")
    with pytest.raises(BuildFailed) as caught:
        list(engine.build_image(leftovers.client, tmp_path, tag))
    assert caught.value.message.startswith("docker build failed at step 2/2 (RUN echo preparing")
    assert "returned a non-zero code: 3" in caught.value.message
    assert "something went wrong here" in caught.value.log_tail
    assert engine.image_info(leftovers.client, tag) is None


@pytest.mark.docker
@pytest.mark.timeout(600)
def test_amms_build_that_fails_prints_the_tail_and_exits_1(one_model: Project, leftovers: DockerLeftovers) -> None:
    """A model pinned to a numpy that does not exist for this Python: pip fails inside the build."""
    folder = one_model.models / "iris" / "1.0.0"
    manifest = read_manifest(folder)
    write_manifest(folder, manifest.model_copy(update={"requirements": {**manifest.requirements, "numpy": "1.0.0"}}))
    tag = leftovers.image("amms-test-failed-build:pip")
    result = amms(one_model, "build", "--tag", tag, env=amms_env(), timeout=540)
    message, hint = error_of_build(result)
    assert message.startswith("docker build failed at step ")
    assert "pip install --requirement" in message and "returned a non-zero code" in message
    assert "numpy==1.0.0" in result.stderr  # pip's complaint, from the log tail
    assert hint is not None and str(one_model.root / ".amms" / "build" / "Dockerfile") in hint
    assert (one_model.root / ".amms" / "build" / "Dockerfile").is_file()
    assert engine.image_info(leftovers.client, tag) is None


def error_of_build(result: subprocess.CompletedProcess[str]) -> tuple[str, str | None]:
    """Like `error_of`, after dropping the log tail lines (│ ...) and progress output printed before."""
    lines = result.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    trimmed = subprocess.CompletedProcess(result.args, result.returncode, result.stdout, "\n".join(lines[start:]))
    assert any(line.startswith("│ ") for line in lines[:start]), result.stderr
    return error_of(trimmed)

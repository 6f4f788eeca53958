"""A native XGBoost model in a real image: the pins its manifest recorded reach the image (the model
loads and predicts in the container as it does in-process), and nothing it does not need comes with
it: no scikit-learn in an image whose model does not use it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from docker_support import DockerLeftovers, serve_image, tracked_leftovers
from native_models import ROWS, Saved, xgboost_json
from projects import Project

from amms_cli.docker import engine

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

VENV_PYTHON = "/opt/amms/venv/bin/python"


@pytest.fixture(scope="module")
def leftovers() -> Iterator[DockerLeftovers]:
    with tracked_leftovers() as tracker:
        yield tracker


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, leftovers: DockerLeftovers) -> tuple[str, Saved]:
    folder = tmp_path_factory.mktemp("docker-native")
    saved = xgboost_json(folder)
    project = Project.init(folder / "proj")
    project.add(saved.path, "boosted", example=ROWS[:1])
    tag = leftovers.image(f"amms-native-{uuid.uuid4().hex[:8]}:test")
    built = project.run("build", "--tag", tag)
    assert built.returncode == 0, built.stdout + built.stderr
    return tag, saved


def test_the_image_pins_the_framework_and_no_scikit_learn(image: tuple[str, Saved], leftovers: DockerLeftovers) -> None:
    tag, _saved = image
    info = engine.image_info(leftovers.client, tag)
    assert info is not None
    pins = info.labels["io.amms.requirements"].split()
    assert any(pin.startswith("xgboost-cpu==") for pin in pins), pins
    assert not any(pin.startswith("scikit-learn==") for pin in pins), pins
    probe = "from importlib.util import find_spec; print(find_spec('sklearn'), find_spec('xgboost') is not None)"
    output = leftovers.client.containers.run(tag, entrypoint=[VENV_PYTHON, "-c", probe], remove=True)
    assert output.decode().split() == ["None", "True"]


def test_the_container_predicts_like_xgboost_in_process(image: tuple[str, Saved], leftovers: DockerLeftovers) -> None:
    tag, saved = image
    url = serve_image(leftovers, tag)
    body = httpx.post(f"{url}/models/boosted/predict", json={"inputs": ROWS, "probabilities": True}, timeout=10).json()
    assert body["outputs"] == saved.predict
    assert np.allclose(body["probabilities"], saved.proba or [], rtol=1e-5)

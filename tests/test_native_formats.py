"""Every format a framework recommends, end to end: detected from the file itself, published (with the
framework's version pinned), served, and predicting through the native, v2 and TF Serving protocols
exactly what the framework predicts in-process; the metadata says what infer returns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from native_models import FORMAT_OF, ROWS, SAVERS, TRUST, Saved, torch_saved
from projects import Project, amms_env, error_of, publish_broken
from server_support import running_server, wait_until

from amms_cli.loaders import LOADERS, detect_format

LIBRARIES = {
    "xgboost": "xgboost-cpu",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "skops": "skops",
    "torchscript": "torch",
    "torch_export": "torch",
    "keras": "keras",
    "transformers": "transformers",
    "mlflow": "mlflow-skinny",
}
NAMES = list(SAVERS)


@dataclass
class Served:
    client: httpx.Client
    project: Project
    saved: dict[str, Saved]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Saved]:
    folder = tmp_path_factory.mktemp("native")
    return {name: save(folder) for name, save in SAVERS.items()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, saved: dict[str, Saved]) -> Iterator[Served]:
    project = Project.init(tmp_path_factory.mktemp("native-project") / "proj")
    for name, model in saved.items():
        project.add(model.path, name, *model.options, example=model.inputs[:1])
    with running_server(project.config) as server, server.client(timeout=30) as client:
        yield Served(client, project, saved)


@pytest.mark.parametrize("name", NAMES)
def test_the_format_is_detected_from_the_file_itself(saved: dict[str, Saved], name: str, tmp_path: Path) -> None:
    path = saved[name].path
    assert detect_format(path) == FORMAT_OF[name]
    if path.is_file():  # the content decides, not the name
        renamed = tmp_path / "model.bin"
        renamed.write_bytes(path.read_bytes())
        assert detect_format(renamed) == FORMAT_OF[name]


@pytest.mark.parametrize("name", NAMES)
def test_the_manifest_records_the_format_and_pins_its_library(served: Served, name: str) -> None:
    manifest = served.project.manifest(name, "1.0.0")
    assert manifest["loader"] == FORMAT_OF[name]
    assert LIBRARIES[FORMAT_OF[name]] in manifest["requirements"]
    if FORMAT_OF[name] in ("xgboost", "lightgbm", "catboost", "torchscript", "torch_export", "keras", "transformers"):
        assert "scikit-learn" not in manifest["requirements"]


@pytest.mark.parametrize("name", NAMES)
def test_native_predictions_equal_the_frameworks_own(served: Served, name: str) -> None:
    model = served.saved[name]
    body = {"inputs": model.inputs, "probabilities": model.proba is not None}
    response = served.client.post(f"/models/{name}/predict", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    if isinstance(model.predict[0], str):
        assert answer["outputs"] == model.predict
    else:
        assert np.allclose(answer["outputs"], model.predict, rtol=1e-5, atol=1e-6)
    if model.proba is not None:
        assert np.allclose(answer["probabilities"], model.proba, rtol=1e-5, atol=1e-6)


def v2_request(model: Saved) -> dict[str, Any]:
    if isinstance(model.inputs[0], dict):  # named columns (the MLflow signature)
        columns = [
            {"name": key, "shape": [len(model.inputs)], "datatype": "FP64", "data": [row[key] for row in model.inputs]}
            for key in model.inputs[0]
        ]
        return {"inputs": columns, "parameters": {"content_type": "pd"}}
    if isinstance(model.inputs[0], str):
        return {"inputs": [{"name": "input", "shape": [len(model.inputs)], "datatype": "BYTES", "data": model.inputs}]}
    return {"inputs": [{"name": "input", "shape": [len(ROWS), 4], "datatype": "FP32", "data": np.ravel(ROWS).tolist()}]}


@pytest.mark.parametrize("name", NAMES)
def test_v2_infer_equals_the_framework_and_its_metadata(served: Served, name: str) -> None:
    model = served.saved[name]
    declared = {output["name"]: output for output in served.client.get(f"/v2/models/{name}").json()["outputs"]}
    response = served.client.post(f"/v2/models/{name}/infer", json=v2_request(model))
    assert response.status_code == 200, response.text
    predict = response.json()["outputs"][0]
    assert (predict["datatype"], [-1, *predict["shape"][1:]]) == (
        declared["predict"]["datatype"],
        declared["predict"]["shape"],
    )
    values = np.asarray(predict["data"]).reshape(predict["shape"])
    if predict["datatype"] == "BYTES":
        assert values.tolist() == model.predict
    else:
        assert np.allclose(values, model.predict, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_tf_serving_predictions_equal_the_frameworks_own(served: Served, name: str) -> None:
    model = served.saved[name]
    response = served.client.post(f"/v1/models/{name}:predict", json={"instances": model.inputs})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    if isinstance(model.predict[0], str):
        assert predictions == model.predict
    else:
        assert np.allclose(predictions, model.predict, rtol=1e-5, atol=1e-6)


def test_skops_refuses_untrusted_types_with_their_names(served: Served, tmp_path: Path) -> None:
    message, hint = error_of(served.project.run("add-model", str(served.saved["skops"].path), "--name", "untrusted"))
    assert message == f"model.skops holds types skops does not trust by default: {TRUST}"
    assert hint == f"if you trust them, publish with --trust {TRUST}"
    assert served.project.manifest("skops", "1.0.0")["trusted_types"] == [TRUST]


def test_a_torch_save_file_gets_one_line_saying_what_to_do(served: Served, tmp_path: Path) -> None:
    message, hint = error_of(served.project.run("add-model", str(torch_saved(tmp_path)), "--name", "module"))
    assert message == "module.pth is a torch.save() file (a pickled module or state dict), which needs its Python class"
    assert hint is not None and "torch.jit.save(torch.jit.script(model)" in hint and "model.py" in hint


def test_native_tree_files_and_keras_run_no_code_and_the_others_say_they_do() -> None:
    runs_code = {name: facts.runs_code for name, facts in LOADERS.items()}
    assert {name for name, runs in runs_code.items() if not runs} == {
        "onnx",
        "xgboost",
        "lightgbm",
        "catboost",
        "skops",
        "keras",
    }


# ---- bad input ---------------------------------------------------------------------------------------


def test_an_unknown_file_names_every_format_and_the_format_option(served: Served, tmp_path: Path) -> None:
    unknown = tmp_path / "model.bin"
    unknown.write_bytes(b"\x00 not a model \x01" * 64)
    message, hint = error_of(served.project.run("add-model", str(unknown), "--name", "unknown"))
    assert message == (
        "cannot tell the format of model.bin: not a file of any format amms knows (catboost, cloudpickle, custom, "
        "joblib, keras, lightgbm, mlflow, onnx, pickle, skops, torch_export, torchscript, transformers, xgboost)"
    )
    assert hint is not None and hint.startswith("pass --format catboost|cloudpickle|")


def test_a_missing_extra_names_the_pip_install_to_run(served: Served, tmp_path: Path) -> None:
    """xgboost made unimportable in the add-model process (and the trial load it starts)."""
    hidden = tmp_path / "hide" / "xgboost"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = amms_env(PYTHONPATH=str(hidden.parent))
    result = served.project.run("add-model", str(served.saved["xgboost_json"].path), "--name", "no_extra", env=env)
    message, hint = error_of(result)
    assert message == "xgboost models need the xgboost library, which is not installed"
    assert hint == "pip install 'amms_cli[xgboost]'"


@pytest.mark.parametrize("name", ["xgboost_json", "lightgbm", "catboost", "keras"])
def test_a_truncated_native_file_is_one_clear_error_and_nothing_is_published(
    served: Served, name: str, tmp_path: Path
) -> None:
    source = served.saved[name].path
    truncated = tmp_path / source.name
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    message, hint = error_of(served.project.run("add-model", str(truncated), "--name", "broken"))
    complete = f"{truncated.name} is not a complete"
    assert message.startswith((f"{FORMAT_OF[name]} load failed: ", f"{truncated.name} is named like", complete)), (
        message
    )
    assert hint
    assert not (served.project.models / "broken").exists()


def test_a_corrupt_native_version_fails_with_its_reason_while_the_others_serve(served: Served) -> None:
    folder = served.project.models / "catboost"
    publish_broken(folder, "1.0.1", b"CBM1" + b"\x00" * 64)
    with running_server(served.project.config, ready=False) as server, server.client() as client:

        def state() -> dict[str, Any]:
            versions = client.get("/models/catboost").json()["versions"]
            return next((version for version in versions if version["version"] == "1.0.1"), {})

        assert wait_until(lambda: state().get("state") == "FAILED", 60)
        assert str(state()["reason"]).startswith("catboost load failed: ")
        # the failure is published as soon as it happens; the fallback to 1.0.0 loads after it
        assert wait_until(lambda: client.get("/models/catboost").json()["served_version"] == "1.0.0", 60)
        assert client.post("/models/lightgbm/predict", json={"inputs": ROWS}).status_code == 200

"""The Python API, as a notebook uses it: `amms_cli.save_model` publishes a fitted object (no manual
pickling) with a DataFrame example whose dtypes are kept, bumps it on the next save, writes native
formats where the framework has one, pickles a notebook's own classes by value, and raises the CLI's
own errors; `amms_cli.load_model` loads what the server would serve; a server watching the project
serves a new save without a restart; and a caller's code type-checks under mypy --strict."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from factories import IRIS_ROWS, iris_classifier, table, table_pipeline
from native_models import ROWS, training
from projects import Project, error_of
from server_support import running_server, wait_until

import amms_cli
from amms_cli.errors import ConfigError, ModelExists
from amms_cli.project.config import load_config
from amms_cli.repository.manifest import read_manifest

pytestmark = pytest.mark.slow


def test_first_save_creates_the_project_and_keeps_the_dataframe_dtypes(tmp_path: Path) -> None:
    frame = table()
    pipeline = table_pipeline()
    saved = amms_cli.save_model(pipeline, "churn", example=frame.head(3), project=tmp_path / "serving")

    assert (saved.name, saved.version, saved.loader, saved.served) == ("churn", "1.0.0", "joblib", True)
    assert saved.path == tmp_path / "serving" / "models" / "churn" / "1.0.0"
    entry = load_config(tmp_path / "serving" / "amms.json").entry("churn")
    assert entry is not None and entry.aspired_version == "1.x"
    manifest = read_manifest(saved.path)
    assert manifest.servable_name == "dataframe"
    columns = {column.name: column for column in manifest.input.columns or []}
    assert {name: column.dtype for name, column in columns.items()} == {name: str(frame[name].dtype) for name in frame}
    kinds = {name: column.type for name, column in columns.items()}
    assert kinds == {"city": "category", "age": "int", "income": "float", "member": "bool"}  # city: the encoder's
    assert columns["city"].levels == ["lyon", "nice", "paris"]
    assert columns["income"].nullable  # the example's first row has a missing income

    second = amms_cli.save_model(pipeline, "churn", project=tmp_path / "serving")
    assert second.version == "1.0.1"
    assert read_manifest(second.path).input.smoke_example == manifest.input.smoke_example  # reused

    minor = amms_cli.save_model(pipeline, "churn", project=tmp_path / "serving", bump="minor")
    assert minor.version == "1.1.0"


def test_load_model_is_what_the_server_would_serve(tmp_path: Path) -> None:
    frame = table()
    pipeline = table_pipeline()
    amms_cli.save_model(pipeline, "churn", example=frame.head(2), project=tmp_path)
    model = amms_cli.load_model("churn", project=tmp_path)
    records = json.loads(frame.head(5).to_json(orient="records"))  # as an HTTP client sends them
    records[0]["income"] = None
    expected = frame.head(5).copy()
    expected.loc[expected.index[0], "income"] = np.nan
    assert model.version == "1.0.0"
    assert model.predict(records) == pipeline.predict(expected).tolist()
    assert np.allclose(model.predict_proba(records), pipeline.predict_proba(expected))
    model.close()


def test_native_formats_where_the_framework_has_one(tmp_path: Path) -> None:
    import torch
    import xgboost

    booster = xgboost.train({"objective": "binary:logistic"}, xgboost.DMatrix(*training()), num_boost_round=4)
    saved = amms_cli.save_model(booster, "boosted", example=ROWS[:1], project=tmp_path)
    assert (saved.loader, (saved.path / "boosted.json").is_file()) == ("xgboost", True)

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 2)).eval()
    saved = amms_cli.save_model(net, "net", example=ROWS[:1], project=tmp_path)
    assert (saved.loader, (saved.path / "net.pt").is_file()) == ("torchscript", True)
    loaded = amms_cli.load_model("net", project=tmp_path)
    with torch.no_grad():
        assert np.allclose(loaded.predict(ROWS), net(torch.tensor(ROWS)).numpy(), atol=1e-6)


def test_a_notebook_class_is_pickled_by_value_and_served(tmp_path: Path) -> None:
    """A class defined in `__main__` cannot be imported by name in the server's process."""
    script = textwrap.dedent(
        f"""
        import amms_cli

        class Doubler:
            def predict(self, rows):
                return [2 * row[0] for row in rows]

        saved = amms_cli.save_model(Doubler(), "doubler", example=[[1.0]], project={str(tmp_path)!r})
        print(saved.loader)
        """
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "cloudpickle"
    with running_server(tmp_path / "amms.json") as server, server.client() as client:
        answer = client.post("/models/doubler/predict", json={"inputs": [[1.5], [4.0]]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"] == [3.0, 8.0]


def test_a_watching_server_serves_a_new_save_without_restart(tmp_path: Path) -> None:
    amms_cli.save_model(iris_classifier(c=1.0), "iris", example=IRIS_ROWS[:1], project=tmp_path)
    with running_server(tmp_path / "amms.json", "--watch") as server:

        def served() -> str:
            return str(httpx.get(f"{server.url}/models/iris", timeout=2).json()["served_version"])

        assert served() == "1.0.0"
        amms_cli.save_model(iris_classifier(c=0.01), "iris", example=IRIS_ROWS[:1], project=tmp_path)
        saved_at = time.monotonic()
        assert wait_until(lambda: served() == "1.0.1", timeout=10, interval=0.02), server.log()[-2000:]
        live_after = time.monotonic() - saved_at
    assert live_after < 1.0, f"the new version went live {live_after:.2f} s after save_model returned"


def test_errors_are_the_clis(tmp_path: Path) -> None:
    project = Project.init(tmp_path)
    message, hint = error_of(project.run("add-model", str(tmp_path / "none.pkl"), "--name", "Bad Name"))
    with pytest.raises(ConfigError) as raised:
        amms_cli.save_model(iris_classifier(), "Bad Name", project=tmp_path)
    assert (raised.value.message, raised.value.hint) == (message, hint)

    with pytest.raises(ConfigError, match="bump='huge' is not one of major, minor, patch"):
        amms_cli.save_model(iris_classifier(), "iris", project=tmp_path, bump="huge")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="example of type object cannot be recorded"):
        amms_cli.save_model(iris_classifier(), "iris", project=tmp_path, example=object())
    with pytest.raises(ConfigError, match=re.escape("aspired='2.x' applies to a first save")):
        amms_cli.save_model(iris_classifier(), "iris", project=tmp_path, example=IRIS_ROWS[:1])
        amms_cli.save_model(iris_classifier(), "iris", project=tmp_path, aspired="2.x")
    (tmp_path / "amms.json").write_text("[]")
    with pytest.raises(ModelExists):  # a folder of versions that no config entry names, of another model
        amms_cli.save_model(iris_classifier(c=0.01), "iris", project=tmp_path)
    assert sorted(path.name for path in (tmp_path / "models" / "iris").iterdir() if path.is_dir()) == ["1.0.0"]


def test_callers_type_check_under_mypy_strict(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(
        textwrap.dedent(
            """
            import amms_cli

            def publish(model: object) -> str:
                saved: amms_cli.SavedVersion = amms_cli.save_model(model, "m", project="p", bump="minor")
                local: amms_cli.LocalModel = amms_cli.load_model("m", project="p")
                return saved.version + local.version
            """
        )
    )
    bad = tmp_path / "bad.py"
    bad.write_text('import amms_cli\namms_cli.save_model(object(), "m", bump="huge")\n')
    command = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent"]
    passed = subprocess.run([*command, str(good)], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert passed.returncode == 0, passed.stdout
    failed = subprocess.run([*command, str(bad)], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert failed.returncode == 1 and 'Argument "bump" to "save_model" has incompatible type' in failed.stdout

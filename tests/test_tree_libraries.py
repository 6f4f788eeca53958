"""Pickled scikit-learn wrappers of CatBoost, LightGBM and XGBoost: their width, names and categorical
columns come from each library's own API (CatBoost reports n_features_in_ = 0; its categorical columns
take strings), and each serves without an example and predicts like the model in-process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier
from factories import save_pickle
from lightgbm import LGBMClassifier
from projects import Project
from server_support import running_server
from xgboost import XGBClassifier

ROWS = [[0.9, 0.1, 0.4, 0.3], [0.2, 0.8, 0.6, 0.7]]
RECORDS = [{"city": "lyon", "size": 0.9}, {"city": "paris", "size": 0.1}, {"city": "rome", "size": None}]


def numbers() -> tuple[np.ndarray, np.ndarray]:
    features = np.random.default_rng(5).random((120, 4))
    return features, (features[:, 0] > 0.5).astype(int)


def mixed(category_dtype: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"city": rng.choice(["paris", "lyon", "nice"], 120), "size": rng.random(120)})
    if category_dtype:
        frame["city"] = frame["city"].astype("category")
    return frame, ((frame["size"] > 0.5) & (frame["city"] != "nice")).to_numpy().astype(int)


@dataclass
class Served:
    client: httpx.Client
    project: Project
    models: dict[str, Any]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("trees")
    models = {
        "catboost": CatBoostClassifier(iterations=20, verbose=False, allow_writing_files=False).fit(*numbers()),
        "catboost_mixed": CatBoostClassifier(
            iterations=20, verbose=False, allow_writing_files=False, cat_features=["city"]
        ).fit(*mixed()),
        "lightgbm_mixed": LGBMClassifier(n_estimators=10, verbose=-1).fit(*mixed(category_dtype=True)),
        "xgboost": XGBClassifier(n_estimators=10).fit(*numbers()),
    }
    project = Project.init(folder / "proj")
    for name, model in models.items():
        project.add(save_pickle(folder / f"{name}.pkl", model), name)
    with running_server(project.config) as server, server.client() as client:
        yield Served(client, project, models)


def predict(served: Served, name: str, inputs: Any) -> list[Any]:
    response = served.client.post(f"/models/{name}/predict", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    return response.json()["outputs"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["catboost", "xgboost"])
def test_a_model_fitted_on_an_array_records_its_width_from_its_own_api(served: Served, name: str) -> None:
    manifest = served.project.manifest(name, "1.0.0")
    assert (manifest["servable_name"], manifest["input"]["n_features_in"]) == ("tabular", 4)
    expected = served.models[name].predict(np.array(ROWS)).reshape(-1).tolist()
    assert predict(served, name, ROWS) == expected


def test_catboost_categorical_columns_take_strings(served: Served) -> None:
    columns = {c["name"]: c for c in served.project.manifest("catboost_mixed", "1.0.0")["input"]["columns"]}
    assert (columns["city"]["type"], columns["city"]["nullable"]) == ("category", False)  # CatBoost refuses NaN there
    assert (columns["size"]["type"], columns["size"]["nullable"]) == ("float", True)
    records = [{**record, "size": record["size"] or 0.5} for record in RECORDS]
    expected = served.models["catboost_mixed"].predict(pd.DataFrame(records)).reshape(-1).tolist()
    assert predict(served, "catboost_mixed", records) == expected


def test_lightgbm_categories_keep_their_levels_and_dtype(served: Served) -> None:
    columns = {c["name"]: c for c in served.project.manifest("lightgbm_mixed", "1.0.0")["input"]["columns"]}
    assert columns["city"] | {"nullable": True} == {
        "name": "city",
        "type": "category",
        "dtype": "category",
        "nullable": True,
        "levels": ["lyon", "nice", "paris"],
        "closed": False,  # an unknown city is a missing value to LightGBM
    }
    cities = [record["city"] if record["city"] != "rome" else None for record in RECORDS]  # unknown: missing
    frame = pd.DataFrame(RECORDS).assign(city=pd.Categorical(cities, categories=["lyon", "nice", "paris"]))
    expected = served.models["lightgbm_mixed"].predict(frame).tolist()
    assert predict(served, "lightgbm_mixed", RECORDS) == expected

"""Train the demo's three small models: a text classifier (cloudpickle), an iris classifier (pickle)
and a churn pipeline fitted on a pandas DataFrame with strings and missing values (joblib, with a CSV
of example rows)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import cloudpickle
import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

REVIEWS = [
    ("what a wonderful, delightful film", "positive"),
    ("I loved every minute of it", "positive"),
    ("great acting and a great story", "positive"),
    ("a joy to watch, highly recommended", "positive"),
    ("boring, slow and far too long", "negative"),
    ("I hated it, a waste of time", "negative"),
    ("terrible acting and a silly plot", "negative"),
    ("awful, do not watch this", "negative"),
]


def customers(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "city": rng.choice(["paris", "lyon", "nice"], rows),
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(3000.0, 900.0, rows).round(2),
            "member": rng.choice([True, False], rows),
        }
    )
    frame.loc[::9, "income"] = np.nan  # gaps, as real data has them
    return frame


def churn_pipeline(frame: pd.DataFrame) -> Pipeline:
    churned = np.where((frame["age"] < 30) & ~frame["member"], "yes", "no")
    columns = ColumnTransformer(
        [
            ("city", OneHotEncoder(), ["city"]),
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
        ],
        remainder="passthrough",
    )
    return Pipeline([("columns", columns), ("classify", LogisticRegression())]).fit(frame, churned)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    texts, labels = zip(*REVIEWS, strict=True)
    text_model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    (out / "sentiment.pkl").write_bytes(cloudpickle.dumps(text_model))
    features, targets = load_iris(return_X_y=True)
    (out / "iris.pkl").write_bytes(pickle.dumps(LogisticRegression(max_iter=500).fit(features, targets)))
    frame = customers()
    joblib.dump(churn_pipeline(frame), out / "churn.joblib")
    frame.head(5).to_csv(out / "customers.csv", index=False)
    print(f"trained {out / 'sentiment.pkl'}, {out / 'iris.pkl'} and {out / 'churn.joblib'} (rows: customers.csv)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))

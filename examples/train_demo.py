"""Train the demo's two small models: a text classifier (cloudpickle) and an iris classifier (pickle)."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import cloudpickle
from sklearn.datasets import load_iris
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

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


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    texts, labels = zip(*REVIEWS, strict=True)
    text_model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    (out / "sentiment.pkl").write_bytes(cloudpickle.dumps(text_model))
    features, targets = load_iris(return_X_y=True)
    (out / "iris.pkl").write_bytes(pickle.dumps(LogisticRegression(max_iter=500).fit(features, targets)))
    print(f"trained {out / 'sentiment.pkl'} and {out / 'iris.pkl'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))

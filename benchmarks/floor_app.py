"""The floor: the thinnest hand-written FastAPI endpoint serving the same models as amms.

orjson in and out, `model.predict` (on a `pd.DataFrame(records)` for records), uvicorn with uvloop and
httptools, no access log. Whatever amms spends beyond this is the cost of its own layers.

    python benchmarks/floor_app.py --port 8100 --model iris_lr=/tmp/iris_lr.pkl
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import uvicorn
from fastapi import FastAPI, Request, Response


def create_app(models: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    @app.post("/models/{name}/predict")
    async def predict(name: str, request: Request) -> Response:
        inputs = orjson.loads(await request.body())["inputs"]
        if isinstance(inputs[0], dict):  # records, for a model fitted on a DataFrame
            outputs = models[name].predict(pd.DataFrame(inputs))
        else:
            outputs = models[name].predict(np.asarray(inputs, dtype=np.float64))
        return Response(orjson.dumps({"outputs": outputs.tolist()}), media_type="application/json")

    return app


def load_models(specs: list[str]) -> dict[str, Any]:
    models = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        models[name] = pickle.loads(Path(path).read_bytes())
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH of a pickled model")
    args = parser.parse_args()
    app = create_app(load_models(args.model))
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()

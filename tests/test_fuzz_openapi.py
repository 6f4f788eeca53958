"""schemathesis against a real server: its own /openapi.json (every route, the per-model operations
included) and the Open Inference Protocol v2 spec. No 5xx, and documented responses match their schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from factories import iris_classifier
from hypothesis import strategies as st
from projects import make_project
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from server_support import ServerProcess, running_server

V2_SPEC = Path(__file__).resolve().parents[2] / "shared" / "specs" / "open_inference_rest.yaml"
CHECKS = [not_a_server_error, response_schema_conformance]
MODELS = ["iris", "other"]
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = make_project(tmp_path_factory.mktemp("fuzz"), {name: iris_classifier() for name in MODELS})
    # With an admin token set, the admin routes are fuzzed too (without the token: every case 401s,
    # so no generated case can unload a model and turn later cases into legitimate 503s).
    with running_server(config, env={"AMMS_ADMIN_TOKEN": "fuzz-token"}) as running:
        yield running


def fuzz(schema: Any, base_url: str, real_names: dict[str, list[str]]) -> list[str]:
    """Run every operation with generated cases; path parameters named in `real_names` are drawn
    half the time from real values, so the cases reach models and not only 404s."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy()
        for parameter, values in real_names.items():
            strategy = _with_real(strategy, parameter, values)

        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
        )
        @hypothesis.given(case=strategy)
        def run(case: Any) -> None:
            case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=10)

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:800]}")
    return failures


def _with_real(strategy: Any, parameter: str, values: list[str]) -> Any:
    def maybe_replace(case: Any, use_real: bool, value: str) -> Any:
        if use_real and case.path_parameters and parameter in case.path_parameters:
            case.path_parameters[parameter] = value
        return case

    return st.builds(maybe_replace, strategy, st.booleans(), st.sampled_from(values))


def test_own_openapi_has_no_server_errors(server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    with server.client() as client:
        paths = json.loads(client.get("/openapi.json").text)["paths"]
    assert "/models/iris/predict" in paths and any(p.startswith("/v2/") for p in paths)
    failures = fuzz(schema, server.url, {"name": MODELS, "version": ["1.0.0", "9.9.9"]})
    assert failures == [], "\n\n".join(failures)


def test_v2_spec_has_no_server_errors(server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_path(str(V2_SPEC))
    failures = fuzz(schema, server.url, {"MODEL_NAME": MODELS, "MODEL_VERSION": ["1.0.0"]})
    assert failures == [], "\n\n".join(failures)

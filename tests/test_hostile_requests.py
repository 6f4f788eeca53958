"""Hostile requests against a real server: each gets a 4xx whose message names the problem."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from factories import IRIS_ROW, iris_classifier
from projects import make_project
from server_support import ServerProcess, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = make_project(tmp_path_factory.mktemp("hostile"), {"iris": iris_classifier()})
    with running_server(config, "--body-limit-mib", "1") as running:
        yield running


@pytest.fixture()
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def raw_request(server: ServerProcess, request: bytes) -> tuple[int, str]:
    """Send bytes exactly as given (no client-side path normalisation); return status and body."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode(errors="replace")


def post(client: httpx.Client, body: bytes | str, path: str = "/models/iris/predict") -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return client.post(path, content=content, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ('{"inputs": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, "nested too deeply"),
        ("[" * 5000 + "]" * 5000, 400, "nested too deeply"),
        ("[" * 500 + "]" * 500, 400, "must be a JSON object"),
        ('{"inputs": [[NaN, 1, 2, 3]]}', 400, "malformed JSON"),
        ('{"inputs": [[1e999, 1, 2, 3]]}', 400, "infinity"),
        ('{"inputs": [["a", "b", "c", "d"]]}', 400, "expected numbers, got strings"),
        ('{"inputs": [[1, 2, 3]]}', 400, "expected 4 features per row, got 3"),
        ('{"inputs": [[1, 2, 3, 4], [1, 2]]}', 400, "rows have different lengths"),
        ('{"inputs": [[true, {}, 3, 4]]}', 400, "expected numbers"),
        ('{"inputs": []}', 400, "empty input"),
        ('{"inputs": [[[1, 2], [3, 4]]]}', 400, "expected rows of numbers"),
        ('{"rows": [[1, 2, 3, 4]]}', 400, "needs an 'inputs' field"),
        ('{"inputs": [[1, 2, 3, 4]], "probabilities": "yes"}', 400, "'probabilities' must be true or false"),
        ("[1, 2]", 400, "must be a JSON object"),
        ("", 400, "empty request body"),
        (b'{"inputs": "\xff\xfe"}', 400, "malformed JSON"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, (str, bytes)) else None,
)
def test_bad_bodies_get_a_400_naming_the_problem(client: httpx.Client, body: str, status: int, message: str) -> None:
    response = post(client, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_array_over_the_size_limit_is_413(client: httpx.Client) -> None:
    rows = json.dumps({"inputs": [IRIS_ROW] * 60_000})  # about 1.4 MiB, over the 1 MiB limit
    response = post(client, rows)
    assert response.status_code == 413 and "over the limit" in response.json()["error"]


def test_bytes_tensor_of_a_million_elements_is_refused(client: httpx.Client) -> None:
    tensor = {"name": "input-0", "shape": [1_000_000], "datatype": "BYTES", "data": ["x"] * 1_000_000}
    response = post(client, json.dumps({"inputs": [tensor]}), "/v2/models/iris/infer")
    assert response.status_code in (400, 413) and response.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/models/../x/predict",
        "/models/%2e%2e/predict",
        "/models/%2e%2e%2fetc/predict",
        "/models/iris/versions/1.x/../../etc/predict",
        "/models/iris/versions/..%2f..%2fetc/predict",
        "/v1/models/..%2f..:predict",
        "/v2/models/%2e%2e/infer",
    ],
)
def test_traversal_names_are_4xx(server: ServerProcess, path: str) -> None:
    body = json.dumps({"inputs": [IRIS_ROW]}).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    status, text = raw_request(server, request)
    assert 400 <= status < 500, (status, text)
    assert json.loads(text)["error"]


def test_server_is_still_healthy_after_the_abuse(client: httpx.Client) -> None:
    assert client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]}).status_code == 200
    assert client.get("/health/ready").status_code == 200

"""`amms serve --watch`: versions swap under load with zero failed requests, bad versions are
contained, config edits apply live. Every test runs a real server process."""

from __future__ import annotations

import json
import shutil
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
from factories import IRIS_ROW, iris_classifier
from projects import make_project, publish_broken, run_amms
from server_support import running_server, wait_until

from amms_cli.repository.versions import Version

PADDING_MB = 24


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Projects made once per module with the real CLI; each test works on its own copy."""
    root = tmp_path_factory.mktemp("templates")
    return {
        "iris": make_project(root / "iris", {"iris": iris_classifier()}).parent,
        "two": make_project(root / "two", {"iris": iris_classifier(), "other": iris_classifier()}).parent,
    }


def copy_project(templates: dict[str, Path], kind: str, target: Path) -> Path:
    shutil.copytree(templates[kind], target, dirs_exist_ok=True)
    return target / "amms.json"


SWAPS = 21  # 1.0.0 → 1.0.21, so 1.0.10 follows 1.0.9


@dataclass
class ClientLog:
    """What one load thread saw: (monotonic time, version) per answer, and every failure."""

    answers: list[tuple[float, Version]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def load_thread(url: str, stop: threading.Event, record: ClientLog) -> None:
    with httpx.Client(base_url=url, timeout=10.0) as client:
        while not stop.is_set():
            try:
                response = client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]})
            except httpx.HTTPError as exc:
                record.failures.append(f"connection error: {exc!r}")
                continue
            if response.status_code != 200:
                record.failures.append(f"HTTP {response.status_code}: {response.text}")
                continue
            record.answers.append((time.monotonic(), Version.parse(response.json()["version"])))


def served_version(client: httpx.Client, model: str = "iris") -> str | None:
    response = client.post(f"/models/{model}/predict", json={"inputs": [IRIS_ROW]})
    return response.json().get("version") if response.status_code == 200 else None


@pytest.mark.slow
def test_versions_swap_under_load_with_zero_failed_requests(tmp_path: Path) -> None:
    config = make_project(tmp_path / "project", {"iris": iris_classifier(PADDING_MB)})
    with running_server(config, "--watch") as server:
        process = psutil.Process(server.process.pid)
        logs = [ClientLog() for _ in range(4)]
        stop = threading.Event()
        threads = [threading.Thread(target=load_thread, args=(server.url, stop, log)) for log in logs]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        rss_before = process.memory_info().rss
        published: list[tuple[Version, float]] = []
        try:
            for _ in range(SWAPS):
                result = run_amms("bump-version", "iris", cwd=config.parent, check=True)
                published.append((Version.parse(result.stdout.split("→")[-1].strip()), time.monotonic()))
                time.sleep(0.4)
            last_version = published[-1][0]
            assert wait_until(lambda: any(v == last_version for log in logs for _, v in log.answers[-5:]), 2.0), (
                f"{last_version} not served within 2 s of its publication"
            )
            time.sleep(1.0)  # let the last unload finish before measuring memory
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=20)
        rss_after = process.memory_info().rss

    failures = [failure for log in logs for failure in log.failures]
    assert failures == [], f"{len(failures)} failed requests, first: {failures[:3]}"
    for log in logs:
        versions = [version for _, version in log.answers]
        assert versions == sorted(versions), "a client saw the served version go backwards"
        assert len(versions) > 50
    assert str(published[9][0]) == "1.0.10" and published[9][0] > published[8][0]

    delays = swap_delays(published, [answer for log in logs for answer in log.answers])
    report = {
        "swaps": len(delays),
        "median_s": round(statistics.median(delays), 3),
        "max_s": round(max(delays), 3),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
        "requests": sum(len(log.answers) for log in logs),
    }
    print("live-reload figures:", json.dumps(report))
    # Each version holds PADDING_MB of data. If old versions stayed loaded, RSS would grow by about
    # SWAPS x PADDING_MB (500 MB). Allow the served version, one being loaded and allocator slack.
    assert rss_after - rss_before < 3 * PADDING_MB * 2**20, report


def swap_delays(published: list[tuple[Version, float]], answers: list[tuple[float, Version]]) -> list[float]:
    """Per published version that was served, the time from publication to its first answer."""
    delays = []
    for version, at in published:
        first = min((t for t, v in answers if v >= version and t >= at), default=None)
        if first is not None:
            delays.append(first - at)
    return delays


def test_corrupt_new_version_fails_and_old_keeps_serving(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    with running_server(config, "--watch") as server, server.client() as client:
        publish_broken(tmp_path / "models" / "iris", "1.0.1", (tmp_path / "iris.pkl").read_bytes()[:120])

        def failed() -> bool:
            versions = client.get("/models/iris").json()["versions"]
            return any(v["version"] == "1.0.1" and v["state"] == "FAILED" for v in versions)

        assert wait_until(failed, 5.0), client.get("/models/iris").text
        detail = next(v for v in client.get("/models/iris").json()["versions"] if v["version"] == "1.0.1")
        assert "truncated" in detail["reason"]
        assert served_version(client) == "1.0.0"
        assert "1.0.1 FAILED" in server.log()


def test_checksum_mismatch_is_refused(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    models = tmp_path / "models" / "iris"
    with running_server(config, "--watch") as server, server.client() as client:
        staging = models / ".tampered"
        shutil.copytree(models / "1.0.0", staging)
        manifest = json.loads((staging / "amms-version.json").read_text())
        manifest["version"] = "1.0.1"
        (staging / "amms-version.json").write_text(json.dumps(manifest))
        artifact = staging / "iris.pkl"
        data = bytearray(artifact.read_bytes())
        data[-2] ^= 0xFF  # same size, different content
        artifact.write_bytes(bytes(data))
        staging.rename(models / "1.0.1")

        def refused() -> bool:
            versions = client.get("/models/iris").json()["versions"]
            return any(v["version"] == "1.0.1" and v["state"] == "FAILED" for v in versions)

        assert wait_until(refused, 5.0)
        detail = next(v for v in client.get("/models/iris").json()["versions"] if v["version"] == "1.0.1")
        assert "checksum mismatch" in detail["reason"]
        assert served_version(client) == "1.0.0"


def test_deleted_served_version_hands_over_to_next_newest(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    run_amms("bump-version", "iris", cwd=tmp_path, check=True)
    with running_server(config, "--watch") as server, server.client() as client:
        assert served_version(client) == "1.0.1"
        shutil.rmtree(tmp_path / "models" / "iris" / "1.0.1")
        assert wait_until(lambda: served_version(client) == "1.0.0", 5.0)

        def versions_listed() -> list[str]:
            return [v["version"] for v in client.get("/models/iris").json()["versions"]]

        # rmtree is not atomic: a pass may see 1.0.1's folder half deleted (described, not served) first
        assert wait_until(lambda: versions_listed() == ["1.0.0"], 5.0), versions_listed()
        assert served_version(client) == "1.0.0"


def test_config_edits_add_and_remove_models_and_their_routes(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "two", tmp_path)
    entries = json.loads(config.read_text())
    config.write_text(json.dumps([entries[0]]))
    with running_server(config, "--watch") as server, server.client() as client:
        assert "/models/other/predict" not in client.get("/openapi.json").json()["paths"]
        assert client.post("/models/other/predict", json={"inputs": [IRIS_ROW]}).status_code == 404

        config.write_text(json.dumps(entries))
        assert wait_until(lambda: served_version(client, "other") == "1.0.0", 5.0)
        operation = client.get("/openapi.json").json()["paths"]["/models/other/predict"]["post"]
        assert operation["requestBody"]["content"]["application/json"]["example"] == {"inputs": [IRIS_ROW]}

        config.write_text(json.dumps([entries[1]]))
        assert wait_until(
            lambda: client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]}).status_code == 404, 5.0
        )
        assert "/models/iris/predict" not in client.get("/openapi.json").json()["paths"]
        assert "model 'iris' not found" in client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]}).text


def test_invalid_config_edit_is_ignored_and_logged(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    good = config.read_text()
    with running_server(config, "--watch") as server, server.client() as client:
        config.write_text(good.replace('"1.x"', '"1.y"'))
        assert wait_until(lambda: "config change ignored" in server.log(), 5.0)
        assert "aspired_version '1.y' is not a version pattern" in server.log()
        assert served_version(client) == "1.0.0"
        config.unlink()
        assert wait_until(lambda: "no such config file" in server.log(), 5.0)
        assert served_version(client) == "1.0.0"
        config.write_text(good)
        run_amms("bump-version", "iris", cwd=tmp_path, check=True)
        assert wait_until(lambda: served_version(client) == "1.0.1", 5.0)


def test_aspired_pattern_change_applies_live(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    run_amms("bump-version", "iris", "--minor", cwd=tmp_path, check=True)  # 1.1.0
    run_amms("bump-version", "iris", cwd=tmp_path, check=True)  # 1.1.1
    with running_server(config, "--watch") as server, server.client() as client:
        assert served_version(client) == "1.1.1"
        config.write_text(config.read_text().replace('"1.x"', '"1.0.x"'))
        assert wait_until(lambda: served_version(client) == "1.0.0", 5.0)


def test_poll_mode_picks_up_new_versions(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    with running_server(config, "--poll", "0.5") as server, server.client() as client:
        assert "polling every 0.5 s" in server.log()
        run_amms("bump-version", "iris", cwd=tmp_path, check=True)
        assert wait_until(lambda: served_version(client) == "1.0.1", 5.0)


def test_without_watch_admin_reload_rescans(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    token = {"Authorization": "Bearer s3cret-token"}
    with running_server(config, env={"AMMS_ADMIN_TOKEN": "s3cret-token"}) as server, server.client() as client:
        run_amms("bump-version", "iris", cwd=tmp_path, check=True)
        time.sleep(0.5)
        assert served_version(client) == "1.0.0"  # not watching
        assert client.post("/admin/reload", headers=token).status_code == 200
        assert served_version(client) == "1.0.1"


def test_admin_api_requires_the_token(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    token = {"Authorization": "Bearer s3cret-token"}
    with running_server(config, env={"AMMS_ADMIN_TOKEN": "s3cret-token"}) as server, server.client() as client:
        assert client.get("/admin/repository").status_code == 401
        wrong = client.get("/admin/repository", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and wrong.json()["error"] == "admin API: the bearer token is wrong"
        repository = client.get("/admin/repository", headers=token).json()
        assert repository["models"][0]["versions"][0]["state"] == "AVAILABLE"

        assert client.post("/admin/models/iris/unload", headers=token).status_code == 200
        unloaded = client.post("/models/iris/predict", json={"inputs": [IRIS_ROW]})
        assert unloaded.status_code == 503 and "unloaded through the admin API" in unloaded.json()["error"]
        assert client.get("/v2/models/iris/ready").status_code != 200
        assert client.post("/admin/models/iris/load", headers=token).json()["served_version"] == "1.0.0"
        assert served_version(client) == "1.0.0"

        index = client.post("/v2/repository/index", headers=token).json()
        assert index == [{"name": "iris", "version": "1.0.0", "state": "AVAILABLE", "reason": "", "served": True}]
        assert client.post("/v2/repository/models/iris/unload", headers=token).status_code == 200
        assert served_version(client) is None
        assert client.post("/v2/repository/models/iris/load", headers=token).status_code == 200
        assert client.post("/v2/repository/models/nope/load", headers=token).status_code == 404


def test_admin_api_is_disabled_without_a_token(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    with running_server(config) as server, server.client() as client:
        response = client.post("/admin/reload", headers={"Authorization": "Bearer anything"})
        assert response.status_code == 403 and "AMMS_ADMIN_TOKEN" in response.json()["error"]


def test_workers_converge_on_the_same_version(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    with running_server(config, "--watch", "--workers", "2") as server:
        run_amms("bump-version", "iris", cwd=tmp_path, check=True)

        def all_new() -> bool:
            seen = set()
            for _ in range(40):  # a new connection each time, so both workers answer
                with httpx.Client(base_url=server.url, timeout=5) as client:
                    seen.add(served_version(client))
            return seen == {"1.0.1"}

        assert wait_until(all_new, 10.0, interval=0.2)


def test_status_url_shows_the_live_view(tmp_path: Path, templates: dict[str, Path]) -> None:
    config = copy_project(templates, "iris", tmp_path)
    with running_server(config) as server:
        result = run_amms("status", "--url", server.url, cwd=tmp_path, check=True)
        assert "iris" in result.stdout and "AVAILABLE" in result.stdout and "1.0.0" in result.stdout
    unreachable = run_amms("status", "--url", server.url, cwd=tmp_path)
    assert unreachable.returncode == 1 and "cannot reach the server" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr

"""What a serving process carries besides the model: imports that slow predictions down, and how it
shares the interpreter's lock between its event loop and its threads.

scikit-learn re-applies every process-wide warning filter for each tree a forest predicts with
(sklearn.utils.parallel), so each filter a library adds at import costs on every request. The
docker SDK (through requests and urllib3) adds four; with it imported, a 100-tree forest took
15-25% longer per predict. The CLI imports it only when a Docker command runs (the Docker end-to-end
tests run `amms build` and `amms serve --docker` through the CLI).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys, warnings
import numpy, sklearn.ensemble  # what a scikit-learn model brings by itself
before = len(warnings.filters)
import amms_cli.cli, amms_cli.serving.model_server, amms_cli.http.app  # everything `amms serve` imports
print(json.dumps({
    "before": before,
    "after": len(warnings.filters),
    "added": [repr(f) for f in warnings.filters[: len(warnings.filters) - before]],
    "docker": sorted(m for m in ("docker", "requests", "urllib3") if m in sys.modules),
}))
"""


def probe() -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_serving_process_adds_no_warning_filters_and_no_docker_sdk() -> None:
    found = probe()
    assert found["docker"] == [], "amms serve imported the docker SDK"
    assert found["after"] == found["before"], f"amms serve's imports added warning filters: {found['added']}"


SWITCH_PROBE = """
import asyncio, json, sys
from pathlib import Path
from amms_cli.project.config import load_config
from amms_cli.serving.model_server import ModelServer
from amms_cli.serving.settings import ServeSettings

async def serve_briefly(config_path):
    settings = ServeSettings(config_path=config_path)
    server = ModelServer.start(load_config(config_path), settings)
    try:
        return sys.getswitchinterval()
    finally:
        await server.stop()

before = sys.getswitchinterval()
print(json.dumps({"before": before, "serving": asyncio.run(serve_briefly(Path(sys.argv[1])))}))
"""


def test_a_serving_process_lets_the_event_loop_take_the_interpreter_lock_back_within_a_millisecond(
    tmp_path: Path,
) -> None:
    """Threads that load models or render /metrics hold the lock for at most 1 ms at a time before
    the event loop gets it back (Python's default: 5 ms; serving/model_server.py measures why)."""
    config = tmp_path / "amms.json"
    config.write_text("[]")
    result = subprocess.run(
        [sys.executable, "-c", SWITCH_PROBE, str(config)], capture_output=True, text=True, check=True
    )
    found = json.loads(result.stdout)
    assert found["before"] == 0.005  # Python's own default, so the change is the server's doing
    assert found["serving"] == 0.001

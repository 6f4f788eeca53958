"""What a serving process carries besides the model: imports that slow predictions down.

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

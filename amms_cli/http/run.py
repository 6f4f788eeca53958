"""Run the app under uvicorn (uvloop + httptools), in one process or several workers."""

from __future__ import annotations

import copy
import os
import signal
import sys
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from amms_cli.http.app import create_app
from amms_cli.http.request_deadline import DeadlineHttpToolsProtocol
from amms_cli.serving.settings import SETTINGS_ENV, ServeSettings


def logging_config(level: str) -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["amms"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    config["formatters"]["default"]["fmt"] = "%(asctime)s %(levelprefix)s %(name)s: %(message)s"
    return config


def exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def run(settings: ServeSettings) -> None:
    """Serve until SIGINT or SIGTERM. uvicorn drains in-flight requests (up to the drain timeout) and
    then re-raises the signal it caught; the handler installed here turns SIGTERM into exit status 0,
    as process supervisors expect of a graceful stop."""
    signal.signal(signal.SIGTERM, exit_cleanly)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": DeadlineHttpToolsProtocol,
        "access_log": settings.access_log,
        "log_level": settings.log_level,
        "log_config": logging_config(settings.log_level),
        "timeout_graceful_shutdown": settings.drain_timeout_s,
        "timeout_keep_alive": 5,
        "server_header": False,
    }
    if settings.workers > 1:
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        uvicorn.run("amms_cli.http.app:app_from_env", factory=True, workers=settings.workers, **common)
    else:
        uvicorn.run(create_app(settings), **common)

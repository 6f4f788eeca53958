"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from amms_cli.http.bodies import json_response
from amms_cli.http.request_state import plane
from amms_cli.http.routing import PlainRoute
from amms_cli.serving.dataplane import DataPlane

router = APIRouter(tags=["health"], route_class=PlainRoute)


def readiness(dataplane: DataPlane) -> Response:
    """200 {"ready": true} once every model configured at start-up has had a served version (models
    that have none since are listed under "unavailable" with the reason); 503 naming the ones still
    waiting before that (also the v2 protocol's readiness)."""
    reason = dataplane.not_ready_reason()
    if reason is not None:
        return json_response({"ready": False, "error": reason}, 503)
    unavailable = dataplane.unavailable()
    return json_response({"ready": True, "unavailable": unavailable} if unavailable else {"ready": True})


@router.get("/health/live", summary="The process is up")
async def live() -> Response:
    return json_response({"live": True})


@router.get("/health/ready", summary="Every configured model has a served version")
async def ready(request: Request) -> Response:
    return readiness(plane(request))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Rendered in a thread: with 1,000 models the text is ~3 MB and takes 0.35-0.5 s of Python, which
    on the event loop held every request for as long (a prediction sent during a scrape waited
    220-290 ms; 12-33 ms in a thread (three runs), which gives the loop the interpreter back every few
    milliseconds: benchmarks/metrics_scrape.py)."""
    text = await asyncio.to_thread(plane(request).metrics.render)
    return Response(text, media_type=CONTENT_TYPE_LATEST)

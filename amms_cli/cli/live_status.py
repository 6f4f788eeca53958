"""`amms status --url`: read a running server's view of its models (GET /models)."""

from __future__ import annotations

from typing import Any

import httpx
from rich.markup import escape
from rich.table import Table

from amms_cli.cli.console import human_size
from amms_cli.errors import AmmsError

STATE_STYLE = {"AVAILABLE": "green", "LOADING": "yellow", "FAILED": "red", "UNLOADED": "dim", "ON_DEMAND": "cyan"}


def fetch_status(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    try:
        response = httpx.get(url.rstrip("/") + "/models", timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise AmmsError(f"cannot reach the server at {url}: {exc}", hint="is `amms serve` running there?") from None
    if response.status_code != 200:
        raise AmmsError(f"{url}/models answered HTTP {response.status_code}: {response.text[:200]}")
    try:
        data: dict[str, Any] = response.json()
    except ValueError:
        raise AmmsError(f"{url}/models did not answer JSON; is it an amms server?") from None
    return data


def render_status(url: str, data: dict[str, Any]) -> Table:
    table = Table(title=f"Live models at {url}")
    for column in ("model", "served", "aspired", "framework", "smoke check", "version", "state", "memory", "reason"):
        table.add_column(column)
    for model in data.get("models", []):
        served = escape(model.get("served_version") or "") or "[red]none[/]"
        if model.get("served_version") and model.get("resident") is False:
            served += " [cyan](on demand)[/]"
        for index, version in enumerate(model.get("versions") or [{}]):
            state = version.get("state", "")
            first = index == 0
            table.add_row(
                escape(model["name"]) if first else "",
                served if first else "",
                escape(model.get("aspired_version") or "") if first else "",
                escape(model.get("framework") or "-") if first else "",
                _smoke_check(model) if first else "",
                escape(version.get("version", "-")),
                f"[{STATE_STYLE.get(state, 'white')}]{state}[/]",
                human_size(version["memory_bytes"]) if version.get("memory_bytes") is not None else "",
                escape(version.get("reason") or ""),
            )
    return table


def _smoke_check(model: dict[str, Any]) -> str:
    if not model.get("served_version"):
        return "-"
    return "yes" if model.get("smoke_check") else "none: no example"

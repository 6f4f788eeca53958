"""PlainRoute: a FastAPI route that calls its endpoint directly with the request and the path's strings.

FastAPI's own handler solves the endpoint's dependencies for every request (it inspects parameters,
validates each path parameter with pydantic, collects errors, runs the dependency exit stacks). The
endpoints here take nothing but the `Request` and `str` path parameters, which need none of that, and
the machinery cost ~45 µs per request of a ~200 µs small-model prediction (in-process ASGI calls of
`benchmarks/floor_app.py`'s endpoint, 3,000 requests each: ~205 µs with FastAPI's handler, ~160 µs
with this one). Everything else stays FastAPI's: the OpenAPI document, routing, 404/405 and the
exception handlers. The constructor refuses an endpoint the direct call would get wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

from fastapi.routing import APIRoute
from starlette.convertors import PathConvertor, StringConvertor
from starlette.requests import Request
from starlette.responses import Response

REQUEST_PARAMETER = "request"
STRING_CONVERTORS = (StringConvertor, PathConvertor)  # the path parameters Starlette hands over as str


class PlainRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        _check_plain(self)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        takes_request = REQUEST_PARAMETER in inspect.signature(endpoint).parameters

        async def handler(request: Request) -> Response:
            if takes_request:
                return await endpoint(request=request, **request.path_params)  # type: ignore[no-any-return]
            return await endpoint(**request.path_params)  # type: ignore[no-any-return]

        return handler


def _check_plain(route: PlainRoute) -> None:
    """An async endpoint returning a Response, taking at most `request: Request` and the path's
    parameters as `str`, and no dependencies: what the direct call passes and what it skips."""
    endpoint = route.endpoint
    where = f"PlainRoute {route.path} ({endpoint.__qualname__})"
    hints = get_type_hints(endpoint)
    returns = hints.pop("return", None)
    parameters = inspect.signature(endpoint).parameters.values()
    if not inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{where}: the endpoint must be an async function")
    if route.dependant.dependencies:
        raise TypeError(f"{where}: has dependencies, which a PlainRoute does not run")
    if not (isinstance(returns, type) and issubclass(returns, Response)):
        raise TypeError(f"{where}: must be annotated to return a Response")
    if any(p.kind is not p.POSITIONAL_OR_KEYWORD or p.default is not p.empty for p in parameters):
        raise TypeError(f"{where}: parameters must be plain ones, without defaults")
    if hints.pop(REQUEST_PARAMETER, Request) is not Request:
        raise TypeError(f"{where}: its '{REQUEST_PARAMETER}' parameter must be a starlette Request")
    convertors = route.param_convertors
    if set(hints) != set(convertors) or any(hint is not str for hint in hints.values()):
        raise TypeError(f"{where}: its other parameters must be exactly the path parameters, each a str")
    if not all(isinstance(convertor, STRING_CONVERTORS) for convertor in convertors.values()):
        raise TypeError(f"{where}: path parameters must be plain '{{name}}' or '{{name:path}}' ones (strings)")

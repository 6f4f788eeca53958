"""uvicorn's httptools protocol with a deadline for receiving a whole request (headers and body).

uvicorn only times out idle keep-alive connections; a client that trickles a request one byte at a
time would hold its connection forever (slowloris). Here the clock starts at the connection (or at the
first byte of the next request on a kept-alive connection) and stops when the request is complete;
past the deadline the connection is closed. Responses, however slow, are never cut.

Each connection has one timer, re-armed only when it fires, rather than a timer per request: the
requests themselves just note when they began (a timer created and cancelled per request cost ~2 µs,
about half a percent of a small model's whole request).
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from amms_cli.http.request_state import SETTINGS
from amms_cli.serving.settings import ServeSettings

log = logging.getLogger("amms.http")


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    _deadline: asyncio.TimerHandle | None = None
    _receiving_since: float | None = None  # loop time the request being received began; None between requests
    request_timeout_s: float

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        settings: ServeSettings = self.app_state[SETTINGS]  # the app's lifespan has put it there
        self.request_timeout_s = settings.request_timeout_s
        self._receiving_since = self.loop.time()
        self._check()  # arms the connection's timer

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._receiving_since is None:
            self._receiving_since = self.loop.time()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._receiving_since = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def _check(self) -> None:
        """Close the connection if a request has been arriving for too long, else look again when
        the request now arriving (or the next one, at the earliest) could be overdue."""
        now = self.loop.time()
        since = self._receiving_since
        if since is not None and now - since >= self.request_timeout_s:
            self._deadline = None
            if not self.transport.is_closing():
                log.warning(
                    "closed a connection from %s: request not received within %.0f s",
                    self.client,
                    self.request_timeout_s,
                )
                self.transport.close()
            return
        self._deadline = self.loop.call_at((now if since is None else since) + self.request_timeout_s, self._check)

"""uvicorn's httptools protocol with a deadline for receiving a whole request (headers and body).

uvicorn only times out idle keep-alive connections; a client that trickles a request one byte at a
time would hold its connection forever (slowloris). Here the clock starts at the connection (or at the
first byte of the next request on a kept-alive connection) and stops when the request is complete;
past the deadline the connection is closed. Responses, however slow, are never cut.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("amms.server")


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    request_timeout_s: float = 30.0  # set from ServeSettings before the server starts

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.warning(
                "closed a connection from %s: request not received within %.0f s", self.client, self.request_timeout_s
            )
            self.transport.close()

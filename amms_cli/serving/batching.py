"""Adaptive batching: a Batcher object wrapped around one loaded version.

A request that arrives while the model is idle is predicted at once (inline when the version is
measured fast), so batching adds no latency at low load. Requests that arrive while a batch is
running wait for it and are merged into the next batch, up to `max_batch_size` rows. For a model
that can predict concurrently (ONNX, custom code), requests that have waited `max_wait_ms` for a
model that is still busy start a second batch beside the first; a pickled model holds the GIL, so a
second batch would only slow the first, and its requests wait to be merged instead.
When a merged batch fails, each request is retried alone, so one bad request does not fail the others.

One refinement keeps batches full under steady load: clients that were just answered send their
next request a fraction of a millisecond later. Predicting the requests queued so far at once would
keep the model busy for a whole call while the rest queue behind it, so the clients would split into
groups answered in turn (measured: 8 clients of a random forest settled into batches of 4 and 4 at
380 req/s instead of batches of 8 at 1,000). The batcher therefore remembers how many requests were
in flight during the last batch (the number of active clients); an idle model that has fewer than
that queued waits for the others, at most one average batch time and never longer than
`max_wait_ms`. A lone client is never kept waiting, since one request in flight is all it ever has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from amms_cli.errors import AmmsError
from amms_cli.loaders import Model
from amms_cli.servables import Servable
from amms_cli.serving.inference import Prediction, RawOutput, predict, run_model, to_prediction

CONCURRENT_BATCHES = 2  # batches at once for a model that predicts concurrently (ONNX, custom code)


@dataclass(slots=True)
class _Request:
    model_input: Any
    rows: int
    proba: bool
    future: asyncio.Future[Prediction]


class Batcher:
    def __init__(
        self,
        model: Model,
        servable: Servable,
        executor: Executor,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        predict_one: Callable[[Any, bool], Awaitable[Prediction]],
        max_parallel: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.model = model
        self.servable = servable
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.predict_one = predict_one  # a single request: inline when the model is measured fast
        self.on_batch = on_batch
        self.max_parallel = max_parallel  # batches allowed to run at once
        self.pending: list[_Request] = []
        self.running = 0
        self._timer: asyncio.TimerHandle | None = None
        self.in_flight = 0  # requests submitted and not yet answered
        self._peak_in_flight = 0  # the most in flight since the last batch finished
        self.expected = 1  # requests in flight during the last batch: the active clients
        self.batch_seconds = 0.0  # moving average of one batch's wall time

    async def submit(self, model_input: Any, proba: bool) -> Prediction:
        self.in_flight += 1
        self._peak_in_flight = max(self._peak_in_flight, self.in_flight)
        try:
            return await self._submit(model_input, proba)
        finally:
            self.in_flight -= 1

    async def _submit(self, model_input: Any, proba: bool) -> Prediction:
        loop = asyncio.get_running_loop()
        if self.running == 0 and not self.pending and self.in_flight >= self.expected:
            return await self._alone_now(loop, model_input, proba)
        request = _Request(model_input, self.servable.count(model_input), proba, loop.create_future())
        self.pending.append(request)
        self._dispatch_or_wait(self.in_flight)
        return await request.future

    async def _alone_now(self, loop: asyncio.AbstractEventLoop, model_input: Any, proba: bool) -> Prediction:
        """The idle model: predict at once, without the task and future a queued batch needs."""
        self.running += 1
        started = loop.time()
        try:
            return await self.predict_one(model_input, proba)
        finally:
            self._batch_done(loop.time() - started, self.servable.count(model_input), 1)

    def _batch_done(self, seconds: float, rows: int, answered: int) -> None:
        """A batch finished, answered or failed: count its rows, learn from it, start the next one.

        The next batch starts at once when it is full or every active client is queued; otherwise
        the clients just answered are about to send again, so it waits for them.
        """
        if self.on_batch is not None:
            self.on_batch(rows)
        self.running -= 1
        self.batch_seconds = seconds if not self.batch_seconds else 0.8 * self.batch_seconds + 0.2 * seconds
        self.expected = max(1, self._peak_in_flight)
        waiting = self.in_flight - answered  # the answered requests are still counted until they return
        self._peak_in_flight = waiting
        if self.pending:
            self._dispatch_or_wait(waiting)

    def _dispatch_or_wait(self, active: int) -> None:
        """Start a batch when the queue fills one, or when the model is idle and `active` (requests not
        yet answered) reaches the clients it expects; otherwise wait for company (a running batch
        dispatches the queue when it ends)."""
        if self._pending_rows() >= self.max_batch_size or (self.running == 0 and active >= self.expected):
            self._dispatch()
        elif self._timer is None and self.running < self.max_parallel:
            self._timer = asyncio.get_running_loop().call_later(self._wait_s(), self._on_timer)

    def _wait_s(self) -> float:
        """How long queued requests wait for company: while a batch runs (which only ONNX and custom
        models let a second batch run beside), up to max_wait_ms; an idle model waits at most one
        average batch time for the clients it has just answered."""
        return self.max_wait_s if self.running else min(self.max_wait_s, self.batch_seconds)

    def _pending_rows(self) -> int:
        return sum(r.rows for r in self.pending)

    def _on_timer(self) -> None:
        self._timer = None
        if self.pending:
            self._dispatch()

    def _dispatch(self) -> None:
        if self.running >= self.max_parallel or not self.pending:
            return
        if self._timer is not None:  # a wait timer must not start a second batch early
            self._timer.cancel()
            self._timer = None
        batch: list[_Request] = []
        rows = 0
        while self.pending and (not batch or rows + self.pending[0].rows <= self.max_batch_size):
            request = self.pending.pop(0)
            batch.append(request)
            rows += request.rows
        self.running += 1
        asyncio.get_running_loop().create_task(self._run(batch, rows))

    async def _run(self, batch: list[_Request], rows: int) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            if len(batch) == 1:
                only = batch[0]
                result = await self.predict_one(only.model_input, only.proba)
                _settle(only.future, result)
            else:
                parts = await loop.run_in_executor(self.executor, self._predict_merged, batch)
                for request, part in zip(batch, parts, strict=True):
                    _settle(request.future, part)
        except BaseException as exc:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
        finally:
            self._batch_done(loop.time() - started, rows, len(batch))

    def _predict_merged(self, batch: list[_Request]) -> list[Prediction | BaseException]:
        proba = any(r.proba for r in batch)
        merged = self.servable.concat([r.model_input for r in batch])
        try:
            raw = run_model(self.model, self.servable.prepare(merged), proba)
        except AmmsError:
            return [self._alone(r) for r in batch]
        counts = [r.rows for r in batch]
        predictions = split_rows(raw.predictions, counts)
        probabilities = split_rows(raw.probabilities, counts) if raw.probabilities is not None else None
        parts: list[Prediction | BaseException] = []
        for index, request in enumerate(batch):
            part_proba = probabilities[index] if probabilities is not None and request.proba else None
            parts.append(to_prediction(self.model, RawOutput(predictions[index], part_proba)))
        return parts

    def _alone(self, request: _Request) -> Prediction | BaseException:
        try:
            return predict(self.model, self.servable.prepare(request.model_input), request.proba)
        except AmmsError as exc:
            return exc


def split_rows(outputs: Any, counts: list[int]) -> list[Any]:
    """Split a batched output back into one slice per request."""
    parts, start = [], 0
    for count in counts:
        parts.append(outputs[start : start + count])
        start += count
    return parts


def _settle(future: asyncio.Future[Prediction], result: Prediction | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)

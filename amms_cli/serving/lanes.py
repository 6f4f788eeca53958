"""The threads predictions run on off the event loop: one shared pool for models that may predict
concurrently (ONNX releases the GIL, custom code may wait on I/O), and one thread per pickled model."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor


class Lanes:
    def __init__(self, pool_threads: int) -> None:
        self.pool = ThreadPoolExecutor(pool_threads, thread_name_prefix="amms-predict")
        self._own: dict[str, ThreadPoolExecutor] = {}
        self._users: Counter[str] = Counter()  # loaded versions predicting on each model's own thread

    def for_model(self, name: str, serialised: bool) -> Executor:
        """The shared pool, or for a model whose calls run one at a time, the thread of its own.

        Its own thread, not the shared pool: spare pool threads waiting on the same queue pass the
        GIL back and forth with the one predicting, which made every call of a random forest 30-70%
        slower once two predictions had overlapped. One per model rather than per version: with a
        new thread for every published version, the server's RSS grew by 74 MB instead of 24 MB
        over the live-reload test's 21 swaps (memory the allocator keeps per thread).
        """
        if not serialised:
            return self.pool
        lane = self._own.get(name)
        if lane is None:
            lane = self._own[name] = ThreadPoolExecutor(1, thread_name_prefix=f"amms-predict-{name}")
        self._users[name] += 1
        return lane

    def release(self, name: str, serialised: bool) -> None:
        """A version given its executor by `for_model` is closed: the last one of a model lets the
        model's own thread go (removed, or evicted by the model cache)."""
        if not serialised:
            return
        self._users[name] -= 1
        if self._users[name] <= 0:
            del self._users[name]
            self.close(name)

    def close(self, name: str) -> None:
        lane = self._own.pop(name, None)
        if lane is not None:
            lane.shutdown(wait=False)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for name in list(self._own):
            self.close(name)

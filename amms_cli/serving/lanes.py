"""The threads predictions run on off the event loop: one shared pool for models that may predict
concurrently (ONNX releases the GIL, custom code may wait on I/O), and a bounded set of lanes, one
thread each, for pickled models, which predict one call at a time: each model is given one lane
for as long as it has a version loaded, the lane fewest models use. Up to `lane_count` pickled
models each have a thread of their own, as if they were alone; past that, models share lanes, and
a thousand models run on `lane_count` threads, not a thousand."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor


class Lanes:
    def __init__(self, pool_threads: int, lane_count: int | None = None) -> None:
        self.pool = ThreadPoolExecutor(pool_threads, thread_name_prefix="amms-predict")
        self.lane_count = lane_count or pool_threads
        self._lanes: dict[int, ThreadPoolExecutor] = {}  # started on first use
        self._lane_of: dict[str, int] = {}  # model -> its lane, while it has versions loaded
        self._users: Counter[str] = Counter()  # loaded versions of each model on its lane
        # models given each lane, kept as they come and go: a cold start picks a lane without walking
        # every resident model (25 us a load with a hundred resident, on the event loop)
        self._models_per_lane = [0] * self.lane_count

    def for_model(self, name: str, serialised: bool) -> Executor:
        """The shared pool, or for a model whose calls run one at a time, its lane.

        A lane, not the shared pool: spare pool threads waiting on the same queue pass the GIL back
        and forth with the one predicting, which made every call of a random forest 30-70% slower
        once two predictions had overlapped. One per model rather than per version: with a new
        thread for every published version, the server's RSS grew by 74 MB instead of 24 MB over the
        live-reload test's 21 swaps (memory the allocator keeps per thread).
        """
        if not serialised:
            return self.pool
        lane = self._lane_of.get(name)
        if lane is None:
            lane = self._lane_of[name] = self._least_used()
            self._models_per_lane[lane] += 1
        self._users[name] += 1
        executor = self._lanes.get(lane)
        if executor is None:
            executor = self._lanes[lane] = ThreadPoolExecutor(1, thread_name_prefix=f"amms-lane-{lane}")
        return executor

    def release(self, name: str, serialised: bool) -> None:
        """A version given its executor by `for_model` is closed: the model's last one frees its lane
        for other models (removed, or evicted by the model cache)."""
        if not serialised:
            return
        self._users[name] -= 1
        if self._users[name] <= 0:
            del self._users[name]
            lane = self._lane_of.pop(name, None)
            if lane is not None:
                self._models_per_lane[lane] -= 1

    def models_on(self, lane: int) -> int:
        return self._models_per_lane[lane]

    def _least_used(self) -> int:
        return min(range(self.lane_count), key=self._models_per_lane.__getitem__)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for executor in self._lanes.values():
            executor.shutdown(wait=False)
        self._lanes.clear()

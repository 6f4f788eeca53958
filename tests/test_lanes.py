"""Which thread a pickled model predicts on (serving/lanes.py): the lane fewest models use, kept by a
model while any of its versions is loaded, freed for others with its last one."""

from __future__ import annotations

from amms_cli.serving.lanes import Lanes


def test_models_take_the_least_used_lane_and_free_it_with_their_last_version() -> None:
    lanes = Lanes(pool_threads=4, lane_count=2)
    try:
        a, b, c = (lanes.for_model(name, True) for name in ("a", "b", "c"))
        assert a is c and a is not b  # a and c share lane 0, b has lane 1
        assert [lanes.models_on(0), lanes.models_on(1)] == [2, 1]

        assert lanes.for_model("a", True) is a  # a second version of a: the same lane, no new model
        lanes.release("a", True)
        assert lanes.models_on(0) == 2  # a still has a version loaded
        lanes.release("a", True)
        lanes.release("c", True)
        assert [lanes.models_on(0), lanes.models_on(1)] == [0, 1]
        assert lanes.for_model("d", True) is a  # the freed lane, now the least used

        assert lanes.for_model("onnx", False) is lanes.pool  # models that predict concurrently: the pool
        lanes.release("onnx", False)
        assert [lanes.models_on(0), lanes.models_on(1)] == [1, 1]
    finally:
        lanes.shutdown()

"""Whether an object that should have been freed is garbage kept by a reference cycle, or is still
referenced from outside (a request's frame, a traceback, a user's global): only the first is freed by a
full garbage collection, and a full collection holds the event loop for 65-130 ms at a hundred models.

The test is the collector's own, over the objects the suspect reaches: count how many of each one's
references come from inside that set; one with more references than that is held from outside, and so
is everything it reaches. The suspect is garbage if none of those reaches it. Modules, classes and
functions are not followed (a model refers to them, and through them to the whole program), so an
object kept through a module's globals is counted as held from outside, which it is. A C type that
does not report what it holds to the collector makes its referents look held from outside too: the
answer errs towards "held", and the slow full collection (every ten minutes, gc_freeze) catches the
rest. Walks cost 1-1.5 us an object (a 100-tree random forest: ~1 ms); past `limit` objects the answer
is "cannot tell" (None)."""

from __future__ import annotations

import gc
import sys
import types
import weakref
from collections import Counter

SHARED = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)
WALK_LIMIT = 20_000  # objects; a walk this long takes 20-30 ms, a fifth of the collection it may avoid
_HELD_HERE = 3  # references this module holds while counting: the list, the loop name, getrefcount's argument


def kept_only_by_cycles(ref: weakref.ref[object], limit: int = WALK_LIMIT) -> bool | None:
    """True if what `ref` points at is alive only through references among the objects it reaches;
    False if it is gone or held from outside; None if it reaches more than `limit` objects."""
    reached = _reach(ref, limit)
    if reached is None:
        return None
    if not reached:
        return False
    inside = _references_inside(reached)
    held = [obj for obj in reached if sys.getrefcount(obj) - _HELD_HERE > inside[id(obj)]]
    return not _reaches_first(held, reached)


def _reach(ref: weakref.ref[object], limit: int) -> list[object] | None:
    """The object behind `ref` first, then every object it reaches, modules, classes and functions
    excepted; empty if it is gone, None past `limit`."""
    root = ref()
    if root is None:
        return []
    reached = [root]
    del root
    seen = {id(reached[0])}
    for obj in reached:
        for referent in gc.get_referents(obj):
            if id(referent) not in seen and not isinstance(referent, SHARED):
                seen.add(id(referent))
                reached.append(referent)
        if len(reached) > limit:
            return None
    return reached


def _references_inside(reached: list[object]) -> Counter[int]:
    """How many references each object has from the others (by id)."""
    inside: Counter[int] = Counter()
    for obj in reached:
        inside.update(map(id, gc.get_referents(obj)))
    return inside


def _reaches_first(held: list[object], reached: list[object]) -> bool:
    """Whether the objects held from outside are, or reach, `reached[0]` through the reached objects."""
    members = {id(obj) for obj in reached}
    target = id(reached[0])
    seen = {id(obj) for obj in held}
    stack = list(held)
    while stack and target not in seen:
        for referent in gc.get_referents(stack.pop()):
            if id(referent) in members and id(referent) not in seen:
                seen.add(id(referent))
                stack.append(referent)
    return target in seen

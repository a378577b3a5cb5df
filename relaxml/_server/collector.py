"""`relax_collector`: fewer pauses of Python's cyclic garbage collector under load.

CPython starts a collection of its youngest objects when 700 more container objects have been
created than freed. A server that has a few requests in flight, each holding its parsed JSON
(a thousand dicts and lists for a 100-task body), crosses that line every few requests, and
every tenth young collection is followed by an older one; about one in a hundred walks every
object in the process (the model, Starlette, SQLite's wrappers: tens of thousands), for 10 to
25 ms here. Measured in-process, 8 requests of 100 tasks in flight, with a sync model: about a
quarter of each request's time went to the collector (docs/benchmarks.md).

Almost all of a request's objects are freed by reference counting when it ends, so the net
count rarely grows: with a threshold of `THRESHOLD` young collections become rare, and with
them the full ones; reference cycles are still collected, only later. Objects are not frozen
(`gc.freeze`): a model replaced by a newer version must stay collectable.
"""

from __future__ import annotations

import gc

THRESHOLD = 10_000
"""Container objects created and not yet freed before a young collection (Python: 700)."""

_PYTHON_DEFAULT = 700


def relax_collector(threshold: int = THRESHOLD) -> bool:
    """Raise the youngest generation's threshold to `threshold`, unless someone (the model's
    module, a `sitecustomize`) already changed it. Returns whether it was raised."""
    current = gc.get_threshold()
    if current[0] != _PYTHON_DEFAULT or not gc.isenabled():
        return False
    gc.set_threshold(threshold, *current[1:])
    return True

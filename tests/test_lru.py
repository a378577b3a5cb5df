"""`LRU`: the bounded cache behind projects, parsed configs, clients and media fetchers."""

from __future__ import annotations

from relaxml._lru import LRU


def test_the_least_recently_used_goes_first_beyond_the_count():
    cache: LRU[str, int] = LRU(2)
    assert cache.put("a", 1) == []
    assert cache.put("b", 2) == []
    assert cache.get("a") == 1  # a is now the most recent
    assert cache.put("c", 3) == [2]
    assert cache.values() == [1, 3]
    assert cache.get("b") is None


def test_costs_are_bounded_and_replacing_a_key_recounts_it():
    cache: LRU[str, str] = LRU(10, budget=5, cost=lambda _, value: len(value))
    cache.put("a", "xx")
    cache.put("b", "yy")
    assert cache.held == 4
    cache.put("a", "x", touch=False)  # a keeps its place, its cost shrinks
    assert (cache.held, cache.values()) == (3, ["x", "yy"])
    assert cache.put("c", "zzz") == ["x"]  # over the budget: the oldest goes
    assert cache.held == 5
    assert cache.put("d", "toolong") == ["yy", "zzz", "toolong"]  # alone over: nothing stays
    assert (len(cache), cache.held) == (0, 0)


def test_pop_and_clear_give_back_what_they_remove():
    cache: LRU[str, int] = LRU(5, cost=lambda _, value: value)
    cache["a"] = 1
    cache["b"] = 2
    assert cache.pop("a") == 1
    assert cache.pop("a") is None
    assert cache.held == 2
    assert cache.clear() == [2]
    assert (len(cache), cache.held) == (0, 0)

"""The process-wide caches of compiled programs and trainers: bounded, least recently used first out, clearable."""

import jax
import jax.numpy as jnp
import pytest

from jaxopt_lab import _cache, sweep


def test_keeps_the_most_recently_used_entries():
    cache = _cache.BoundedCache("test", 2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1  # "a" is now the most recent
    cache["c"] = 3
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    with pytest.raises(ValueError, match="max_entries"):
        _cache.BoundedCache("bad", 0)


def test_a_second_sweep_reuses_the_program_until_the_caches_are_cleared():
    def train_fn(key, hp):
        return {"loss": hp["lr"] * jnp.sum(jax.random.normal(key, (3,)))}

    space = sweep.grid({"lr": [0.1, 0.2]}) * sweep.seeds(2)
    first = sweep.run(train_fn, space, progress=False)
    again = sweep.run(train_fn, space, progress=False)
    sweep.clear_caches()
    cleared = sweep.run(train_fn, space, progress=False)
    assert (first.stats.compilations, again.stats.compilations, cleared.stats.compilations) == (1, 0, 1)
    assert (first.outputs["loss"] == cleared.outputs["loss"]).all()

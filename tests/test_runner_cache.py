"""The runner's steps: the plan's chunks, and the compiled-program cache a caller passes to `execute`."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import _cache
from jaxopt_lab.sweep import plan, runner


def _group(fn, n=6, label=None):
    a = np.linspace(0.5, 3.0, n)
    return runner.Group(fn=fn, indices=np.arange(n), seeds=np.arange(n) % 3, hparams={"a": a},
                        label=label or {}, cache_key=None)


def _square_plus_seed(seed, hp):
    return {"y": hp["a"] ** 2 + seed.astype(jnp.float32)}


def _expected(group):
    return np.asarray(group.hparams["a"], np.float32) ** 2 + group.seeds


def test_a_passed_cache_is_used_and_a_cleared_one_recompiles():
    group = _group(_square_plus_seed)
    cache = _cache.BoundedCache("test programs", 4)
    first, s1 = runner.execute([group], 6, program_cache=cache, progress=False)
    assert s1.compilations == 1 and len(cache) == 1
    assert not any(key in runner._COMPILED for key in cache)  # the process-wide cache was not touched
    again, s2 = runner.execute([group], 6, program_cache=cache, progress=False)
    assert s2.compilations == 0
    cache.clear()
    cleared, s3 = runner.execute([group], 6, program_cache=cache, progress=False)
    assert s3.compilations == 1 and len(cache) == 1
    for out in (first, again, cleared):
        np.testing.assert_allclose([o["y"] for o in out], _expected(group), rtol=1e-6)


def test_without_a_cache_the_process_wide_one_serves():
    def fn(seed, hp):  # a new function: its program is not cached yet
        return {"y": hp["a"] ** 2 + seed.astype(jnp.float32)}

    group = _group(fn)
    _, s1 = runner.execute([group], 6, progress=False)
    _, s2 = runner.execute([group], 6, progress=False)
    assert (s1.compilations, s2.compilations) == (1, 0)
    assert any(key[0] == id(fn) for key in runner._COMPILED)


def test_a_full_cache_evicts_the_least_recently_used_program():
    cache = _cache.BoundedCache("one program", 1)
    g1, g2 = _group(_square_plus_seed), _group(lambda seed, hp: {"y": hp["a"] * 2.0})
    counts = [runner.execute([g], 6, program_cache=cache, progress=False)[1].compilations for g in (g1, g2, g1)]
    assert counts == [1, 1, 1] and len(cache) == 1


@pytest.mark.parametrize("execution, map_batch, bounds", [
    # 10 runs in chunks of 4 on one device: three chunks of 4, 4 and 2 ...
    ("vmap", 1, [(0, 0, 4), (1, 4, 8), (2, 8, 10)]),
    # ... but lanes of 3 round each chunk up to 6 runs, which covers the group in two.
    ("map", 3, [(0, 0, 6), (1, 6, 10)]),
])
def test_plan_rounds_map_chunks_to_whole_lanes(execution, map_batch, bounds):
    group = _group(_square_plus_seed, n=10)
    p = plan.plan_group(group, execution=execution, auto=False, map_batch_size=map_batch, chunk_size=4,
                        chunk_budget=plan.DEFAULT_CHUNK_BUDGET, n_devices=1, lanes=None, halving=None)
    assert p.keys == ("a",) and p.out_shape["y"].shape == ()
    assert list(p.chunk_bounds(10)) == bounds
    out, stats = runner.execute([group], 10, chunk_size=4, execution=execution, map_batch_size=map_batch,
                                devices=None, progress=False, program_cache=_cache.BoundedCache("t", 2))
    assert stats.chunks == len(bounds)
    np.testing.assert_allclose([o["y"] for o in out], _expected(group), rtol=1e-6)

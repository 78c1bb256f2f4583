"""Search spaces: the finite, ordered list of runs a sweep makes.

A `Space` is a list of points; a point maps keys to Python values. Keys address
config fields with dots (``"optimizer.learning_rate"``, ``"model.activation"``,
``"train.batch_size"``) plus the special key ``"seed"``; the Python API may use
any non-empty string. Values are scalars (``bool``, ``int``, ``float``, ``str``;
numpy scalars are converted) or flat tuples of scalars, which is how a value of
``model.hidden`` such as ``[20, 20]`` is written. NaN and ``None`` are rejected:
a run's hyperparameters must be comparable to group and aggregate them.

Spaces are built from grids, random draws and seed lists and combined with
`product` (``a * b``, the first space varying slowest, like nested loops) and
`concat` (``a + b``). This is the outer loop of the hyperparameter lecture's "nested loop":
grid search enumerates every configuration, random search draws a fixed budget
of configurations from distributions (Bergstra & Bengio, "Random Search for
Hyper-Parameter Optimization", JMLR 2012).

Random spaces are reproducible: `random` reads the raw 64-bit words of
``numpy.random.Generator(numpy.random.PCG64(seed))``'s bit generator, trial by
trial and, within a trial, key by key in the order the distributions are
given, and maps them to values with the formulas in each distribution's
docstring rather than with `Generator`'s methods, whose algorithms NumPy may
change between versions (its compatibility policy promises the same stream
only on the same build). PCG64 seeded through `SeedSequence` is a fixed
algorithm, so the same seed gives the same points in every process, on every
machine and NumPy version -- bit for bit for uniform, integer and choice draws;
log-uniform draws go through the platform's ``exp``/``log``, which may differ in
the last bit. Drawing trial by trial also means the first ``t`` trials of a
larger space are exactly the ``t``-trial space: a random search can be extended
without changing the runs already made.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from jaxopt_lab._checks import closest

__all__ = [
    "Space",
    "Distribution",
    "uniform",
    "loguniform",
    "choice",
    "randint",
    "int_loguniform",
    "one_minus_loguniform",
    "DISTRIBUTIONS",
    "grid",
    "random",
    "quasirandom",
    "unit_points",
    "QUASIRANDOM_SEQUENCES",
    "seeds",
    "single",
    "product",
    "concat",
    "from_config",
    "config_parts",
    "SEED_KEY",
]

SEED_KEY = "seed"
Scalar = bool | int | float | str
Value = Scalar | tuple


def _scalar(key: str, value: Any) -> Scalar:
    """`value` as a plain Python scalar, or ValueError naming `key`."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            raise ValueError(f"{key}: NaN is not a valid value")
        return value
    raise ValueError(f"{key}={value!r} is not a scalar: values must be bool, int, float or str")


def _value(key: str, value: Any) -> Value:
    """A scalar, or a flat list/tuple of scalars (stored as a tuple, e.g. model.hidden)."""
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        items = list(value)
        if any(isinstance(v, (list, tuple, Mapping, np.ndarray)) and np.ndim(v) != 0 for v in items):
            raise ValueError(f"{key}={value!r} is not a scalar or a flat list of scalars")
        return tuple(_scalar(key, v) for v in items)
    return _scalar(key, value)


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key or key != key.strip():
        raise ValueError(
            f"{key!r} is not a valid key: keys are non-empty strings such as 'optimizer.learning_rate'"
        )
    return key


class Space:
    """An ordered, finite, non-empty list of points sharing the same keys.

    Build one with `grid`, `random`, `seeds`, `single`, `Space.empty`,
    `product` / ``*`` and `concat` / ``+``, or directly from a list of dicts
    (all with the same keys; the key order is the first point's). A space is
    immutable: `points()` and iteration return fresh dicts.
    """

    __slots__ = ("_keys", "_rows")

    def __init__(self, points: Sequence[Mapping[str, Any]]):
        points = list(points)
        if not points:
            raise ValueError("a space needs at least one point")
        keys = tuple(_check_key(k) for k in points[0])
        rows = []
        for i, p in enumerate(points):
            if set(p) != set(keys):
                missing = sorted(set(keys) - set(p))
                extra = sorted(set(p) - set(keys))
                raise ValueError(
                    f"point {i} has different keys from point 0 (missing: {missing}, extra: {extra}); "
                    "every point of a space has the same keys"
                )
            rows.append(tuple(_value(k, p[k]) for k in keys))
        self._keys = keys
        self._rows = tuple(rows)

    @classmethod
    def _from_rows(cls, keys: tuple[str, ...], rows: Sequence[tuple]) -> Space:
        # Trusted constructor for already-validated rows.
        space = cls.__new__(cls)
        space._keys = keys
        space._rows = tuple(rows)
        return space

    @classmethod
    def empty(cls) -> Space:
        """One point with no keys: the identity of `product`."""
        return cls._from_rows((), [()])

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of every point, in order."""
        return self._keys

    def points(self) -> list[dict[str, Value]]:
        """The points, in run order, as new dicts."""
        return [dict(zip(self._keys, row, strict=True)) for row in self._rows]

    def values(self, key: str) -> list[Value]:
        """The value of `key` in every point, in run order."""
        if key not in self._keys:
            hint = closest(key, self._keys)
            raise KeyError(f"{key!r} is not a key of this space{hint}; keys: {self._keys}")
        j = self._keys.index(key)
        return [row[j] for row in self._rows]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[dict[str, Value]]:
        for row in self._rows:
            yield dict(zip(self._keys, row, strict=True))

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            rows = self._rows[index]
            if not rows:
                raise ValueError(f"slice {index} of a space of {len(self)} points is empty")
            return Space._from_rows(self._keys, rows)
        return dict(zip(self._keys, self._rows[index], strict=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return self._keys == other._keys and self._rows == other._rows

    def __hash__(self) -> int:
        return hash((self._keys, self._rows))

    def __mul__(self, other: Space) -> Space:
        if not isinstance(other, Space):
            return NotImplemented
        return product(self, other)

    def __add__(self, other: Space) -> Space:
        if not isinstance(other, Space):
            return NotImplemented
        return concat(self, other)

    def __repr__(self) -> str:
        return f"Space({len(self)} points, keys={list(self._keys)})"


# ----------------------------------------------------------------------------- distributions


def _finite_number(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{what}={value!r} must be a finite number")
    return float(value)


def _integer(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{what}={value!r} must be an integer")
    return int(value)


_TWO64 = 1 << 64


def _word(bits: np.random.BitGenerator) -> int:
    return int(bits.random_raw())


def _uniform(bits: np.random.BitGenerator, low: float, high: float) -> float:
    u = (_word(bits) >> 11) * 2.0**-53
    return low + (high - low) * u


def _below(bits: np.random.BitGenerator, m: int) -> int:
    """Uniform integer in ``[0, m)`` from raw words, by rejection (no modulo bias)."""
    if m > _TWO64:
        raise ValueError(f"a range of {m} integers is wider than 2**64")
    limit = _TWO64 - _TWO64 % m
    while True:
        w = _word(bits)
        if w < limit:
            return w % m


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A one-dimensional distribution that `random` draws a scalar from.

    Attributes:
      name: one of `DISTRIBUTIONS` (also the TOML table key, e.g. ``{ uniform = [a, b] }``).
      args: its parameters, already checked: ``(low, high)`` or, for ``choice``, the values.
    """

    name: str
    args: tuple

    def sample(self, bits: np.random.BitGenerator) -> Scalar:
        """One draw from the raw words of `bits` (the exact formula is in the factory's docstring)."""
        if self.name == "uniform":
            low, high = self.args
            return _uniform(bits, low, high)
        if self.name == "loguniform":
            low, high = self.args
            return math.exp(_uniform(bits, math.log(low), math.log(high)))
        if self.name == "one_minus_loguniform":
            low, high = self.args
            return 1.0 - math.exp(_uniform(bits, math.log(low), math.log(high)))
        if self.name == "choice":
            return self.args[_below(bits, len(self.args))]
        if self.name == "randint":
            low, high = self.args
            return low + _below(bits, high - low + 1)
        if self.name == "int_loguniform":
            low, high = self.args
            x = math.exp(_uniform(bits, math.log(low), math.log(high + 1)))
            # exp(log(high + 1)) is never reached by uniform's [a, b) but rounding may land on it.
            return min(int(math.floor(x)), high)
        raise ValueError(f"unknown distribution {self.name!r}")

    def from_unit(self, u: float) -> Scalar:
        """The value at `u` in ``[0, 1)`` of the inverse CDF: how `quasirandom` maps a coordinate.

        ``uniform``: ``low + (high - low) * u``; ``loguniform``: ``exp(log(low) + u * (log(high) - log(low)))``;
        ``one_minus_loguniform``: 1 minus that; ``choice``: ``values[floor(u * n)]``; ``randint``:
        ``low + floor(u * (high - low + 1))``; ``int_loguniform``: ``floor`` of the log-uniform value on
        ``[low, high + 1)``. The same formulas as `sample` with `u` in place of the random word, so a
        uniformly distributed `u` gives this distribution exactly.
        """
        u = float(u)
        if not 0.0 <= u < 1.0:
            raise ValueError(f"from_unit(u={u!r}): u must lie in [0, 1)")
        if self.name == "uniform":
            low, high = self.args
            return low + (high - low) * u
        if self.name in ("loguniform", "one_minus_loguniform"):
            low, high = self.args
            x = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
            return 1.0 - x if self.name == "one_minus_loguniform" else x
        if self.name == "choice":
            return self.args[min(int(u * len(self.args)), len(self.args) - 1)]
        if self.name == "randint":
            low, high = self.args
            return low + min(int(u * (high - low + 1)), high - low)
        if self.name == "int_loguniform":
            low, high = self.args
            x = math.exp(math.log(low) + u * (math.log(high + 1) - math.log(low)))
            return min(int(math.floor(x)), high)
        raise ValueError(f"unknown distribution {self.name!r}")


def uniform(low: float, high: float) -> Distribution:
    """Uniform on ``[low, high)``: ``low + (high - low) * u`` with ``u = (w >> 11) * 2**-53``.

    ``w`` is the next raw 64-bit word; ``u`` is uniform on ``[0, 1)`` with 53
    random bits. ``low == high`` gives ``low``.
    """
    lo, hi = _finite_number("uniform low", low), _finite_number("uniform high", high)
    if lo > hi:
        raise ValueError(f"uniform low={low!r} > high={high!r}: low must be <= high")
    return Distribution("uniform", (lo, hi))


def loguniform(low: float, high: float) -> Distribution:
    """Log-uniform on ``[low, high)``: ``exp(uniform(log(low), log(high)))``; needs ``0 < low <= high``.

    The usual prior for learning rates and weight decays, whose effect scales
    with their order of magnitude (Bergstra & Bengio 2012).
    """
    lo, hi = _finite_number("loguniform low", low), _finite_number("loguniform high", high)
    if lo <= 0:
        raise ValueError(f"loguniform low={low!r} is out of range: valid range is (0, inf)")
    if lo > hi:
        raise ValueError(f"loguniform low={low!r} > high={high!r}: low must be <= high")
    return Distribution("loguniform", (lo, hi))


def one_minus_loguniform(low: float, high: float) -> Distribution:
    """``1 - x`` with ``x`` log-uniform on ``[low, high)``; needs ``0 < low <= high <= 1``.

    The prior for momentum-like decays (beta1, beta2, momentum), whose effect scales with
    ``1 - beta`` -- the averaging horizon ``1 / (1 - beta)`` -- as searched by Choi et al.
    (2019) and Schmidt et al. (2021): ``{ one_minus_loguniform = [1e-3, 1.0] }`` gives
    betas from 0 to 0.999, each decade of ``1 - beta`` equally likely.
    """
    lo, hi = _finite_number("one_minus_loguniform low", low), _finite_number("one_minus_loguniform high", high)
    if lo <= 0 or hi > 1:
        raise ValueError(
            f"one_minus_loguniform [{low!r}, {high!r}] is out of range: valid range is 0 < low <= high <= 1"
        )
    if lo > hi:
        raise ValueError(f"one_minus_loguniform low={low!r} > high={high!r}: low must be <= high")
    return Distribution("one_minus_loguniform", (lo, hi))


def choice(values: Sequence[Any]) -> Distribution:
    """One of `values`, each equally likely: ``values[below(len(values))]``.

    ``below(m)`` takes the next raw word ``w`` until ``w < 2**64 - 2**64 % m``
    (rejection keeps it unbiased) and returns ``w % m``.

    Repeating a value weights it.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"choice values={values!r} must be a non-empty list")
    return Distribution("choice", tuple(_value("choice value", v) for v in values))


def randint(low: int, high: int) -> Distribution:
    """An integer in ``[low, high]``, both ends included: ``low + below(high - low + 1)`` (see `choice`).

    Inclusive like Python's `random.randint`, so ``{ int = [16, 128] }`` can give 128.
    """
    lo, hi = _integer("randint low", low), _integer("randint high", high)
    if lo > hi:
        raise ValueError(f"randint low={low!r} > high={high!r}: low must be <= high")
    return Distribution("randint", (lo, hi))


def int_loguniform(low: int, high: int) -> Distribution:
    """An integer in ``[low, high]`` spread evenly over orders of magnitude; needs ``1 <= low <= high``.

    ``floor(exp(uniform(log(low), log(high + 1))))``, so each integer ``n``
    gets probability ``log((n + 1) / n) / log((high + 1) / low)``. For sizes
    such as hidden widths or batch sizes.
    """
    lo, hi = _integer("int_loguniform low", low), _integer("int_loguniform high", high)
    if lo < 1:
        raise ValueError(f"int_loguniform low={low!r} is out of range: valid range is [1, inf)")
    if lo > hi:
        raise ValueError(f"int_loguniform low={low!r} > high={high!r}: low must be <= high")
    return Distribution("int_loguniform", (lo, hi))


DISTRIBUTIONS = {
    "uniform": uniform,
    "loguniform": loguniform,
    "choice": choice,
    "randint": randint,
    "int": randint,
    "int_loguniform": int_loguniform,
    "one_minus_loguniform": one_minus_loguniform,
}
"""TOML names of the distributions: ``{ name = [args] }``; ``int`` is an alias of ``randint``."""


# ----------------------------------------------------------------------------- constructors


def grid(axes: Mapping[str, Sequence[Any]]) -> Space:
    """Every combination of the axes' values, the last key varying fastest.

    ``grid({"a": [1, 2], "b": ["x", "y"]})`` gives ``a=1,b=x; a=1,b=y; a=2,b=x;
    a=2,b=y`` -- the order of nested ``for`` loops over the keys as written. No
    axes gives `Space.empty`. An empty axis, a repeated value in an axis or a
    value that is not a scalar raise `ValueError` naming the key.
    """
    if not isinstance(axes, Mapping):
        raise ValueError(f"grid axes must be a mapping of key -> list of values, not {axes!r}")
    keys = tuple(_check_key(k) for k in axes)
    columns = []
    for key in keys:
        values = axes[key]
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray)):
            raise ValueError(f"{key}: a grid axis must be a list of values, not {values!r}")
        if len(values) == 0:
            raise ValueError(f"{key}: a grid axis must have at least one value")
        column = [_value(key, v) for v in values]
        for i, v in enumerate(column):
            if v in column[:i]:
                raise ValueError(f"{key}: value {v!r} appears twice in the grid axis")
        columns.append(column)
    return Space._from_rows(keys, list(itertools.product(*columns)))


def _distribution_keys(dists: Any, search: str) -> tuple[str, ...]:
    """The keys of a non-empty mapping of key -> `Distribution`, each checked."""
    if not isinstance(dists, Mapping) or not dists:
        raise ValueError(f"{search} needs at least one distribution: a mapping of key -> Distribution")
    keys = tuple(_check_key(k) for k in dists)
    for key in keys:
        if not isinstance(dists[key], Distribution):
            raise ValueError(
                f"{key}={dists[key]!r} is not a Distribution; use one of {', '.join(sorted(DISTRIBUTIONS))}"
            )
    return keys


def random(trials: int, seed: int, dists: Mapping[str, Distribution]) -> Space:
    """`trials` points drawn from `dists` with the raw words of ``Generator(PCG64(seed))``.

    Trial by trial, and within a trial key by key in the order of `dists` (see
    the module docstring for why the points never change for a given seed).
    """
    trials = _integer("trials", trials)
    if trials < 1:
        raise ValueError(f"trials={trials!r} is out of range: valid range is [1, inf)")
    seed = _integer("seed", seed)
    if seed < 0:
        raise ValueError(f"seed={seed!r} is out of range: valid range is [0, inf)")
    keys = _distribution_keys(dists, "random search")
    bits = np.random.Generator(np.random.PCG64(seed)).bit_generator
    rows = [tuple(dists[k].sample(bits) for k in keys) for _ in range(trials)]
    return Space._from_rows(keys, rows)


#: Low-discrepancy sequences `quasirandom` draws from (`scipy.stats.qmc`).
QUASIRANDOM_SEQUENCES = ("halton", "sobol")
#: Points of the sequence skipped by default, per sequence: AlgoPerf's Halton search skips the
#: first 100 (the early points of high-dimensional Halton sequences are correlated across
#: dimensions); a Sobol' sequence keeps its balance only from its start, so none are skipped.
QUASIRANDOM_SKIP = {"halton": 100, "sobol": 0}


def unit_points(trials: int, dims: int, seed: int, sequence: str = "halton", skip: int | None = None) -> np.ndarray:
    """``(trials, dims)`` points of a randomized low-discrepancy sequence in ``[0, 1)^dims``.

    The sequence (`QUASIRANDOM_SEQUENCES`) is scrambled by `scipy.stats.qmc` with
    ``Generator(PCG64(seed))`` (digit permutations for Halton, Owen scrambling for Sobol'), its
    first `skip` points are skipped (default `QUASIRANDOM_SKIP`), and every dimension is shifted
    by its own uniform offset modulo 1 (a Cranley-Patterson rotation; the offsets are raw words
    of ``PCG64`` seeded with ``SeedSequence(seed).spawn(1)[0]``). This is the randomization of
    AlgoPerf's and the Deep Learning Tuning Playbook's quasi-random search (scrambled, shifted,
    first points skipped), except that the points are not shuffled: the first ``t`` points are
    then exactly the ``t``-point set, and a prefix of a low-discrepancy sequence is itself
    evenly spread, so a search can be extended or cut short without losing coverage.
    """
    from scipy.stats import qmc

    trials, dims, seed = _integer("trials", trials), _integer("dims", dims), _integer("seed", seed)
    if trials < 1:
        raise ValueError(f"trials={trials!r} is out of range: valid range is [1, inf)")
    if dims < 1:
        raise ValueError(f"dims={dims!r} is out of range: valid range is [1, inf)")
    if seed < 0:
        raise ValueError(f"seed={seed!r} is out of range: valid range is [0, inf)")
    if sequence not in QUASIRANDOM_SEQUENCES:
        raise ValueError(f"sequence={sequence!r} is not a valid choice{closest(sequence, QUASIRANDOM_SEQUENCES)}; "
                         f"valid choices: {', '.join(QUASIRANDOM_SEQUENCES)}")
    skip = QUASIRANDOM_SKIP[sequence] if skip is None else _integer("skip", skip)
    if skip < 0:
        raise ValueError(f"skip={skip!r} is out of range: valid range is [0, inf)")
    rng = np.random.Generator(np.random.PCG64(seed))
    engine = qmc.Halton(dims, scramble=True, rng=rng) if sequence == "halton" else qmc.Sobol(dims, rng=rng)

    with warnings.catch_warnings():
        # Sobol' warns that its balance needs a power-of-2 count; any count is a valid search budget.
        warnings.simplefilter("ignore", UserWarning)
        if skip:
            engine.fast_forward(skip)
        points = engine.random(trials)
    bits = np.random.PCG64(np.random.SeedSequence(seed).spawn(1)[0])
    shift = (bits.random_raw(dims) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    # Both terms are in [0, 1), so the sum is below 2 and `% 1.0` is exact and below 1.
    return (points + shift[None, :]) % 1.0


def quasirandom(trials: int, seed: int, dists: Mapping[str, Distribution], *, sequence: str = "halton",
                skip: int | None = None) -> Space:
    """`trials` points of a quasi-random search: a scrambled low-discrepancy sequence mapped through `dists`.

    Coordinate ``j`` of each point of `unit_points` goes through the inverse CDF of the ``j``-th
    distribution (`Distribution.from_unit`), in the order of `dists`. Quasi-random points cover
    the space more evenly than random ones (lower discrepancy) while keeping random search's
    virtues: every trial is independent of the results, any budget is valid, and each
    hyperparameter's marginal is still its distribution (Bousquet et al. 2017, "Critical
    Hyper-Parameters: No Random, No Cry"; the search method of the Deep Learning Tuning
    Playbook, Choi et al. 2019 and AlgoPerf, Dahl et al. 2023).

    Args:
      trials: number of points (>= 1).
      seed: seed of the scrambling and shift (>= 0): the same seed gives the same points.
      dists: key -> `Distribution`, one sequence dimension each.
      sequence: ``"halton"`` (default) or ``"sobol"``.
      skip: sequence points skipped first (default `QUASIRANDOM_SKIP`).

    Returns:
      A `Space`; the first ``t`` points of a larger search are the ``t``-point search.

    Examples:
      >>> sp = quasirandom(8, 0, {"optimizer.learning_rate": loguniform(1e-4, 1.0)})
      >>> len(sp)
      8
    """
    keys = _distribution_keys(dists, "quasi-random search")
    u = unit_points(trials, len(keys), seed, sequence, skip)
    rows = [tuple(dists[k].from_unit(float(x)) for k, x in zip(keys, row, strict=True)) for row in u]
    return Space._from_rows(keys, rows)


def seeds(n_or_list: int | Sequence[int]) -> Space:
    """The ``seed`` key: ``n`` gives ``0..n-1``; a list gives those seeds (distinct, >= 0) in order."""
    if isinstance(n_or_list, numbers.Integral) and not isinstance(n_or_list, bool):
        n = int(n_or_list)
        if n < 1:
            raise ValueError(f"seeds={n!r} is out of range: valid range is [1, inf)")
        values = list(range(n))
    elif isinstance(n_or_list, (Sequence, np.ndarray)) and not isinstance(n_or_list, (str, bytes)):
        if len(n_or_list) == 0:
            raise ValueError("seeds: the list of seeds is empty")
        values = [_integer("seeds", s) for s in n_or_list]
        for i, s in enumerate(values):
            if s < 0:
                raise ValueError(f"seeds: seed {s!r} is out of range: valid range is [0, inf)")
            if s in values[:i]:
                raise ValueError(f"seeds: seed {s!r} appears twice")
    else:
        raise ValueError(f"seeds={n_or_list!r} must be a positive integer or a list of integers")
    return Space._from_rows((SEED_KEY,), [(s,) for s in values])


def single(point: Mapping[str, Any]) -> Space:
    """A space of exactly one point."""
    if not isinstance(point, Mapping):
        raise ValueError(f"single() takes a mapping of key -> value, not {point!r}")
    if not point:
        return Space.empty()
    return Space([point])


def product(*spaces: Space) -> Space:
    """Every combination of one point of each space, the first space varying slowest.

    Keys are concatenated in order; a key in two spaces raises `ValueError`.
    `product()` is `Space.empty()`.
    """
    keys: tuple[str, ...] = ()
    for s in spaces:
        if not isinstance(s, Space):
            raise ValueError(f"product() takes spaces, not {s!r}")
        dup = [k for k in s.keys if k in keys]
        if dup:
            raise ValueError(f"key {dup[0]!r} is in two spaces of a product: each key may be swept only once")
        keys += s.keys
    rows = [sum(parts, ()) for parts in itertools.product(*(s._rows for s in spaces))]
    return Space._from_rows(keys, rows)


def concat(*spaces: Space) -> Space:
    """The points of every space, one space after the other.

    All spaces must have the same keys (in any order; the first space's order is
    kept), since every run needs a value for every swept key.
    """
    if not spaces:
        raise ValueError("concat() needs at least one space")
    first = spaces[0]
    rows = []
    for i, s in enumerate(spaces):
        if not isinstance(s, Space):
            raise ValueError(f"concat() takes spaces, not {s!r}")
        if set(s.keys) != set(first.keys):
            missing = sorted(set(first.keys) - set(s.keys))
            extra = sorted(set(s.keys) - set(first.keys))
            raise ValueError(
                f"concat(): space {i} has different keys from space 0 (missing: {missing}, extra: {extra}); "
                "concatenated spaces must sweep the same keys"
            )
        order = [s.keys.index(k) for k in first.keys]
        rows.extend(tuple(row[j] for j in order) for row in s._rows)
    return Space._from_rows(first.keys, rows)


# ----------------------------------------------------------------------------- config


SPACE_CONFIG_KEYS = ("grid", "random", "quasirandom", "seeds")


def _grid_axes(table: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for name, value in table.items():
        key = f"{prefix}.{name}"
        if isinstance(value, Mapping):
            _grid_axes(value, key, out)
        elif isinstance(value, list):
            out[key[len("sweep.grid.") :]] = value
        else:
            raise ValueError(f"{key} = {value!r}: a grid axis must be a list of values, e.g. [0.01, 0.1]")


def _random_dists(table: Mapping[str, Any], prefix: str, out: dict[str, Distribution], root: str = "sweep.random"
                  ) -> None:
    for name, value in table.items():
        key = f"{prefix}.{name}"
        is_section = isinstance(value, Mapping) and (
            prefix == root or any(isinstance(v, Mapping) for v in value.values())
        )
        if is_section:
            _random_dists(value, key, out, root)
        elif isinstance(value, Mapping):
            out[key[len(root) + 1 :]] = _distribution_from_config(key, value)
        else:
            raise ValueError(
                f"{key} = {value!r}: write a distribution as a table, e.g. {{ loguniform = [1e-4, 1.0] }}; "
                f"valid distributions: {', '.join(DISTRIBUTIONS)}"
            )


def _distribution_from_config(key: str, spec: Mapping[str, Any]) -> Distribution:
    if len(spec) != 1:
        raise ValueError(
            f"{key} = {dict(spec)!r}: a distribution is one entry such as {{ uniform = [0.0, 0.99] }}; "
            f"valid distributions: {', '.join(DISTRIBUTIONS)}"
        )
    ((name, args),) = spec.items()
    if name not in DISTRIBUTIONS:
        raise ValueError(
            f"{key}: unknown distribution {name!r}{closest(name, DISTRIBUTIONS)}; "
            f"valid distributions: {', '.join(DISTRIBUTIONS)}"
        )
    if not isinstance(args, list):
        raise ValueError(f"{key}: {name} takes a list, e.g. {{ {name} = [...] }}, not {args!r}")
    try:
        if name == "choice":
            return choice(args)
        if len(args) != 2:
            raise ValueError(f"{name} takes [low, high], got {args!r}")
        return DISTRIBUTIONS[name](*args)
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None


def check_method_table(table: Any, root: str, keys: Sequence[str]) -> None:
    """`ValueError` unless `table` (``[sweep.pbt]``, ``[sweep.adaptive]``, ...) is a table whose keys are
    `keys` or distribution sections; the message names the key and the valid ones."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{root} must be a table with {', '.join(keys)} and distribution sections, not {table!r}")
    for key, value in table.items():
        if key not in keys and not isinstance(value, Mapping):
            raise ValueError(f"unknown key {root}.{key}{closest(key, keys)}; valid keys: {', '.join(keys)} and "
                             f"distribution sections such as [{root}.optimizer]")


def search_distributions(table: Any, root: str, fixed: Collection[str] = ("trials", "seed")
                         ) -> dict[str, Distribution]:
    """The distributions of a search table such as ``[sweep.random]``: every section table of `table`
    (``[ROOT.optimizer]`` ...) except the keys named in `fixed`, keyed ``section.key``."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{root} must be a table with {', '.join(fixed)} and sections, not {table!r}")
    rest = {k: v for k, v in table.items() if k not in fixed}
    for name, value in rest.items():
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{root}.{name} = {value!r}: distributions go in section tables such as "
                f"[{root}.optimizer]; the other keys of [{root}] are {', '.join(fixed)}"
            )
    dists: dict[str, Distribution] = {}
    _random_dists(rest, root, dists, root)
    if not dists:
        raise ValueError(f"{root} has no distributions: add e.g. [{root}.optimizer]")
    return dists


def _search_part(table: Any, name: str) -> Space:
    """The space of ``[sweep.random]`` or ``[sweep.quasirandom]`` (trials, seed, sections; quasirandom's
    ``sequence``)."""
    root = f"sweep.{name}"
    if not isinstance(table, Mapping):
        raise ValueError(f"{root} must be a table with trials, seed and sections, not {table!r}")
    if "trials" not in table:
        raise ValueError(f"{root}.trials is required: the number of {name.replace('quasi', 'quasi-')} configurations")
    trials = table["trials"]
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"{root}.trials={trials!r} is out of range: valid range is [1, inf)")
    rseed = table.get("seed", 0)
    if isinstance(rseed, bool) or not isinstance(rseed, int) or rseed < 0:
        raise ValueError(f"{root}.seed={rseed!r} must be an integer >= 0")
    if name == "random":
        return random(trials, rseed, search_distributions(table, root))
    sequence = table.get("sequence", "halton")
    if sequence not in QUASIRANDOM_SEQUENCES:
        hint = closest(str(sequence), QUASIRANDOM_SEQUENCES)
        raise ValueError(f"{root}.sequence = {sequence!r} is not a valid choice{hint}; "
                         f"valid choices: {', '.join(QUASIRANDOM_SEQUENCES)}")
    dists = search_distributions(table, root, ("trials", "seed", "sequence"))
    return quasirandom(trials, rseed, dists, sequence=sequence)


def config_parts(sweep: Mapping[str, Any], other_keys: Collection[str] | None = None) -> dict[str, Space]:
    """The spaces a ``[sweep]`` table describes, by name: ``grid``, ``random``, ``quasirandom``, ``seeds``.

    Only the parts the table has are returned, except ``seeds``, which is seed 0
    alone when absent (unless the grid sweeps ``seed`` itself). See `from_config`
    for the syntax and how the parts combine.
    """
    if not isinstance(sweep, Mapping):
        raise ValueError(f"[sweep] must be a table, not {sweep!r}")
    if other_keys is not None:
        valid = [*SPACE_CONFIG_KEYS, *other_keys]
        for key in sweep:
            if key not in valid:
                hint = closest(key, valid)
                raise ValueError(f"unknown key sweep.{key}{hint}; valid keys of [sweep]: {', '.join(valid)}")
    parts: dict[str, Space] = {}
    if "grid" in sweep:
        table = sweep["grid"]
        if not isinstance(table, Mapping):
            raise ValueError(
                f"sweep.grid must be a table of sections, e.g. [sweep.grid.optimizer], not {table!r}"
            )
        axes: dict[str, Any] = {}
        _grid_axes(table, "sweep.grid", axes)
        try:
            parts["grid"] = grid(axes)
        except ValueError as e:
            raise ValueError(f"sweep.grid.{e}") from None
    for name in ("random", "quasirandom"):
        if name in sweep:
            parts[name] = _search_part(sweep[name], name)
    if "seeds" in sweep:
        try:
            parts["seeds"] = seeds(sweep["seeds"])
        except ValueError as e:
            raise ValueError(f"sweep.{e}") from None
    elif SEED_KEY not in parts.get("grid", Space.empty()).keys:
        parts["seeds"] = seeds(1)
    return parts


def from_config(sweep: Mapping[str, Any], other_keys: Collection[str] | None = None) -> Space:
    """The space of a config's ``[sweep]`` table (docs/guide.md, `[sweep]`).

    ``[sweep.grid.<section>]`` lists become grid axes keyed ``section.key``
    (nested tables nest the key); ``[sweep.random]`` (``trials``, ``seed`` --
    default 0 -- and ``[sweep.random.<section>]`` distributions written
    ``{ loguniform = [a, b] }``, ``{ uniform = [a, b] }``, ``{ choice = [...] }``,
    ``{ int = [a, b] }`` / ``{ randint = [a, b] }`` or ``{ int_loguniform = [a, b] }``)
    is a random search; ``[sweep.quasirandom]`` (the same keys, plus ``sequence`` =
    ``"halton"`` or ``"sobol"``) is a quasi-random search (`quasirandom`); ``seeds = n``
    or ``seeds = [..]`` gives the seeds (seed 0 alone when absent). An empty table is
    one run with seed 0.

    Grid, random and quasi-random search combine by their keys, in that order:

    - disjoint keys: ``product(grid, random, seeds)`` -- e.g. a grid over
      ``optimizer.name`` with a random learning rate for each;
    - the same keys (e.g. a grid and a random search that both search the learning
      rate and momentum): ``product(concat(grid, random), seeds)`` -- the grid's
      configurations, then the random ones, so both searches are in one table
      and can be compared at equal budgets (`config_parts` gives each part's size);
    - some keys shared, others not: `ValueError`, as neither reading is clearly meant.

    Run order: grid configurations first, then random trials, seeds fastest.
    The runs of one configuration are adjacent (runs ``c*S .. c*S+S-1`` for
    configuration ``c`` and ``S`` seeds), so per-config aggregation reads
    contiguous blocks and a partly finished sweep holds complete
    configurations rather than one seed of everything.

    Keys of ``[sweep]`` other than grid, random, quasirandom and seeds belong to the runner
    (``chunk_size``, ...) and are ignored; pass `other_keys` to reject any key
    outside ``SPACE_CONFIG_KEYS + other_keys`` instead.
    """
    parts = config_parts(sweep, other_keys)
    configs: list[Space] = []
    names: list[str] = []
    for name in ("grid", "random", "quasirandom"):
        if name not in parts:
            continue
        part = parts[name]
        # Each search combines with those before it by their keys: disjoint keys multiply, the same
        # keys concatenate (grid first, then random, then quasi-random), anything else is ambiguous.
        for i, (prev, prev_name) in enumerate(zip(configs, names, strict=True)):
            shared = [k for k in prev.keys if k in part.keys]
            if not shared:
                continue
            if set(prev.keys) != set(part.keys):
                raise ValueError(
                    f"sweep.{prev_name} and sweep.{name} both sweep {shared} but not the same keys: sweep disjoint "
                    f"keys (every {prev_name} point gets every {name} trial) or the same keys (the {prev_name} "
                    f"runs, then the {name} ones)"
                )
            configs[i], names[i] = concat(prev, part), f"{prev_name}+{name}"
            break
        else:
            configs.append(part)
            names.append(name)
    try:
        return product(*configs, parts.get("seeds", Space.empty()))
    except ValueError as e:
        raise ValueError(f"sweep: {e}") from None

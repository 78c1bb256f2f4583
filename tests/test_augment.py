"""Augmentation: shapes, determinism per key, identities, and rotation against independent references."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jaxopt_lab.data.augment import (
    augment,
    compose,
    gaussian_noise,
    random_flip,
    random_rotation,
    random_shift,
    rotate,
)

RNG = np.random.RandomState(0)
IMAGES = RNG.randint(0, 17, size=(6, 8, 8)).astype(np.float64)  # digits-like: 8x8, 0..16
FLAT = IMAGES.reshape(6, 64)
KEY = jax.random.key(0)

# Jitted once at module level: eager dispatch of these small ops is slow, and compiles are shared.
RANDOM_OPS = [
    jax.jit(lambda k, x: gaussian_noise(k, x, 0.5)),
    jax.jit(lambda k, x: random_shift(k, x, 2)),
    jax.jit(lambda k, x: random_flip(k, x)),
    jax.jit(lambda k, x: random_rotation(k, x, 20)),
]


@pytest.mark.parametrize("op", RANDOM_OPS, ids=["noise", "shift", "flip", "rotation"])
def test_shapes_and_determinism_per_key(op):
    for x in (IMAGES, FLAT):
        out = op(KEY, x)
        chex.assert_shape(out, x.shape)
        chex.assert_trees_all_equal(out, op(KEY, x))  # same key, same result
    # Different keys give different results, and images in a batch get different draws.
    a, b = op(jax.random.key(1), FLAT), op(jax.random.key(2), FLAT)
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    # The flat and (n, 8, 8) layouts are the same images.
    flat, square = np.asarray(op(KEY, FLAT)), np.asarray(op(KEY, IMAGES))
    np.testing.assert_allclose(flat, square.reshape(6, 64), rtol=1e-14)


def test_zero_parameters_are_the_identity():
    np.testing.assert_array_equal(random_shift(KEY, FLAT, 0), FLAT)
    np.testing.assert_array_equal(random_rotation(KEY, IMAGES, 0.0), IMAGES)
    np.testing.assert_array_equal(rotate(IMAGES, 0.0), IMAGES)
    np.testing.assert_array_equal(gaussian_noise(KEY, FLAT, 0.0), FLAT)
    np.testing.assert_array_equal(random_flip(KEY, IMAGES, 0.0), IMAGES)


def test_flip_twice_is_the_identity_and_p_one_mirrors_all():
    once = random_flip(KEY, IMAGES)
    np.testing.assert_array_equal(random_flip(KEY, once), IMAGES)
    np.testing.assert_array_equal(random_flip(KEY, IMAGES, 1.0), IMAGES[:, :, ::-1])  # np.fliplr
    vertical = random_flip(KEY, IMAGES, 1.0, axis="vertical")
    np.testing.assert_array_equal(vertical, IMAGES[:, ::-1, :])  # np.flipud
    flipped = np.asarray(once)
    changed = [not np.array_equal(flipped[i], IMAGES[i]) for i in range(6)]
    assert 0 < sum(changed) < 6  # per-image decisions with p = 0.5 (for this key)


def test_shift_moves_pixels_by_whole_steps():
    out = np.asarray(random_shift(KEY, IMAGES, 1))
    for i in range(6):
        matches = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ref = np.zeros((8, 8))
                src = IMAGES[i][max(0, -dy) : 8 - max(0, dy), max(0, -dx) : 8 - max(0, dx)]
                ref[max(0, dy) : 8 - max(0, -dy), max(0, dx) : 8 - max(0, -dx)] = src
                matches.append(np.array_equal(out[i], ref))
        assert any(matches), f"image {i} is not a one-pixel shift with zero fill"
    wrapped = np.asarray(random_shift(KEY, IMAGES, 3, mode="wrap"))
    for i in range(6):
        assert any(
            np.array_equal(wrapped[i], np.roll(IMAGES[i], (dy, dx), axis=(0, 1)))
            for dy in range(-3, 4)
            for dx in range(-3, 4)
        )


def test_rotation_matches_rot90_and_scipy():
    np.testing.assert_allclose(rotate(IMAGES, 90.0), np.rot90(IMAGES, axes=(1, 2)), atol=1e-12)
    np.testing.assert_allclose(rotate(IMAGES, -90.0), np.rot90(IMAGES, -1, axes=(1, 2)), atol=1e-12)
    angles = np.array([10.0, -23.0, 37.5, 5.0, -14.0, 45.0])
    for mode, scipy_mode in (("constant", "grid-constant"), ("wrap", "grid-wrap")):
        ours = rotate(IMAGES, angles, mode=mode)
        ref = np.stack(
            [
                ndimage.rotate(im, a, reshape=False, order=1, mode=scipy_mode, prefilter=False)
                for im, a in zip(IMAGES, angles, strict=True)
            ]
        )
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_random_rotation_angles_stay_within_the_limit():
    # Rotations up to 1 degree move a pixel centre at most 5 * pi / 180 (corner radius < 5): a small change.
    out = np.asarray(random_rotation(KEY, IMAGES, 1.0))
    assert 0 < np.abs(out - IMAGES).max() < 16 * 0.1


def test_traced_hyperparameters_under_vmap():
    keys = jax.random.split(KEY, 3)
    stds = jnp.array([0.0, 1.0, 2.0])
    out = jax.jit(jax.vmap(gaussian_noise, in_axes=(0, None, 0)))(keys, FLAT, stds)
    np.testing.assert_array_equal(out[0], FLAT)
    np.testing.assert_allclose(out[2] - FLAT, 2.0 * jax.random.normal(keys[2], FLAT.shape), rtol=1e-12)
    rotations = jax.jit(jax.vmap(lambda k, m: random_rotation(k, IMAGES, m)))
    deg = rotations(keys, jnp.array([0.0, 5.0, 10.0]))
    np.testing.assert_array_equal(deg[0], IMAGES)


def test_noise_statistics():
    x = jnp.zeros((200, 64))
    out = np.asarray(gaussian_noise(KEY, x, 0.3))
    assert abs(out.std() - 0.3) < 0.01 and abs(out.mean()) < 0.01


def test_compose_and_augment():
    pipeline = augment(["shift", ("rotation", {"max_degrees": 10}), ("noise", {"std": 0.1})])
    out = jax.jit(pipeline)(KEY, FLAT)
    chex.assert_shape(out, FLAT.shape)
    k1, k2, k3 = jax.random.split(KEY, 3)
    manual = gaussian_noise(k3, random_rotation(k2, random_shift(k1, FLAT, 1), 10), 0.1)
    np.testing.assert_allclose(out, manual, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(compose()(KEY, FLAT), FLAT)
    with pytest.raises(ValueError, match=r"augmentation='rotate' is not a valid choice \(did you mean 'rotation'\?\)"):
        augment(["rotate"])
    with pytest.raises(ValueError, match=r"augmentation 'rotation': option='max_degree' is not a valid choice "
                       r"\(did you mean 'max_degrees'\?\)"):
        augment([("rotation", {"max_degree": 3})])


def test_float32_without_x64():
    with jax.enable_x64(False):
        x = jnp.asarray(FLAT, jnp.float32)
        for op in (gaussian_noise, random_rotation):
            assert jax.eval_shape(op, jax.random.PRNGKey(0), x, 1.0).dtype == jnp.float32
        out = jax.eval_shape(random_shift, jax.random.PRNGKey(0), jnp.asarray(FLAT, jnp.int32))
        assert out.dtype == jnp.float32


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: gaussian_noise(KEY, FLAT, -1.0), r"std=-1.0 is out of range: valid range is \[0.0, inf\)"),
        (lambda: random_flip(KEY, IMAGES, 1.5), r"p=1.5 is out of range: valid range is \[0.0, 1.0\]"),
        (lambda: random_shift(KEY, IMAGES, -1), r"max_shift=-1 is out of range"),
        (lambda: random_rotation(KEY, IMAGES, 200.0), r"max_degrees=200.0 is out of range"),
        (lambda: random_shift(KEY, np.zeros((2, 10))), r"images must have shape"),
        (lambda: rotate(IMAGES, 10.0, mode="wrapp"), r"mode='wrapp' is not a valid choice \(did you mean 'wrap'\?\); "
         r"valid choices: constant, wrap"),
        (lambda: random_flip(KEY, IMAGES, axis="diagonal"), r"axis='diagonal' is not a valid choice; "
         r"valid choices: horizontal, vertical"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_range_check_is_the_package_one():
    """`_checks.check_range`: an unbounded side is open (inf refused), traced values are not checked."""
    with pytest.raises(ValueError, match=r"std=inf is out of range: valid range is \[0.0, inf\)"):
        gaussian_noise(KEY, FLAT, float("inf"))
    with pytest.raises(ValueError, match=r"max_degrees=nan is out of range: valid range is \[0.0, 180.0\]"):
        random_rotation(KEY, IMAGES, float("nan"))
    x = jnp.asarray(FLAT)
    traced = jax.jit(gaussian_noise)(KEY, x, 0.5)
    np.testing.assert_allclose(traced, x + 0.5 * jax.random.normal(KEY, x.shape, x.dtype), rtol=1e-6, atol=1e-6)

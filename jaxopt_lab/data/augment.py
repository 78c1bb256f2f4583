"""Data augmentation as pure functions of a PRNG key (the optimizers-and-overfitting lecture's list).

The optimizers-and-overfitting lecture enlarges the training set with rotated, left-right and up-down
flipped, and noise-corrupted copies of each image. Here each of those is a
function `(key, x) -> x` with the same shape out as in, drawing its random
parameters *per image* from the key, so it runs inside `jit`/`vmap` (a sweep
gives every run its own key) and the same key always gives the same result.
Hyperparameters (`std`, `p`, `max_shift`, `max_degrees`) may be traced.

Images are a batch, either `(n, h, w)` or flattened `(n, h*w)` with a square
side (the 8x8 digits: `(n, 64)`); the output has the input's shape. Pixels
shifted or rotated in from outside the image are 0 (`mode="constant"`, the
digits' background) or wrap around (`mode="wrap"`, as in the lecture's
`rotate(..., mode='wrap')`). Integer images come back as float32.

Note that flips change what some digits look like (a flipped 2 is no 2);
shifts and small rotations are the safe choices for the digits.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_lab._checks import check_choice, check_range, unknown_choice

__all__ = [
    "gaussian_noise",
    "random_shift",
    "random_flip",
    "rotate",
    "random_rotation",
    "compose",
    "augment",
    "AUGMENTATIONS",
    "MODES",
]

Augmentation = Callable[[jax.Array, jax.Array], jax.Array]
MODES = ("constant", "wrap")


def _check_mode(mode: str) -> None:
    check_choice("mode", mode, MODES)


def _float(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _as_images(images: Any) -> tuple[jax.Array, tuple[int, ...]]:
    """`(n, h, w)` view of a batch of images, and the shape to give the result."""
    images = _float(images)
    if images.ndim == 3:
        return images, images.shape
    if images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side == images.shape[1]:
            return images.reshape(images.shape[0], side, side), images.shape
    raise ValueError(
        f"images must have shape (n, h, w) or (n, side*side) (flattened square images), got {images.shape}"
    )


def _pixel(image: jax.Array, rows: jax.Array, cols: jax.Array, mode: str) -> jax.Array:
    """`image[rows, cols]` at integer positions; outside positions are 0 or wrap around."""
    h, w = image.shape
    if mode == "wrap":
        return image[rows % h, cols % w]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    values = image[jnp.clip(rows, 0, h - 1), jnp.clip(cols, 0, w - 1)]
    return jnp.where(inside, values, jnp.zeros((), image.dtype))


def gaussian_noise(key: jax.Array, x: Any, std: Any) -> jax.Array:
    """`x + std * N(0, 1)`, independent noise on every entry (any shape). `std >= 0`, may be traced."""
    check_range("std", std, low=0.0)
    return _noise_kernel(key, _float(x), std)


# The kernels are jitted so that eager calls run compiled; inside an outer jit they are inlined.
# Hyperparameters are traced arguments (new values never recompile); only mode/axis are static.
@jax.jit
def _noise_kernel(key: jax.Array, x: jax.Array, std: Any) -> jax.Array:
    return x + jnp.asarray(std, x.dtype) * jax.random.normal(key, x.shape, x.dtype)


def random_shift(key: jax.Array, images: Any, max_shift: Any = 1, *, mode: str = "constant") -> jax.Array:
    """Translate each image by whole pixels, `dy, dx` uniform in `{-max_shift, ..., max_shift}`.

    Output pixel `(r, c)` is input pixel `(r - dy, c - dx)`; `max_shift = 0` is the identity.
    """
    check_range("max_shift", max_shift, low=0.0)
    _check_mode(mode)
    imgs, shape = _as_images(images)
    return _shift_kernel(key, imgs, max_shift, mode).reshape(shape)


@partial(jax.jit, static_argnames="mode")
def _shift_kernel(key: jax.Array, imgs: jax.Array, max_shift: Any, mode: str) -> jax.Array:
    n, h, w = imgs.shape
    shifts = jax.random.randint(key, (n, 2), -max_shift, max_shift + 1)

    def one(image, shift):
        rows = jnp.arange(h)[:, None] - shift[0]
        cols = jnp.arange(w)[None, :] - shift[1]
        return _pixel(image, rows, cols, mode)

    return jax.vmap(one)(imgs, shifts)


def random_flip(key: jax.Array, images: Any, p: Any = 0.5, *, axis: str = "horizontal") -> jax.Array:
    """Mirror each image with probability `p`: left-right ("horizontal") or up-down ("vertical").

    The same key flips the same images, so applying it twice with one key is the identity.
    """
    check_range("p", p, low=0.0, high=1.0)
    check_choice("axis", axis, ("horizontal", "vertical"))
    imgs, shape = _as_images(images)
    return _flip_kernel(key, imgs, p, axis).reshape(shape)


@partial(jax.jit, static_argnames="axis")
def _flip_kernel(key: jax.Array, imgs: jax.Array, p: Any, axis: str) -> jax.Array:
    flip = jax.random.uniform(key, (imgs.shape[0],)) < p
    mirrored = imgs[:, :, ::-1] if axis == "horizontal" else imgs[:, ::-1, :]
    return jnp.where(flip[:, None, None], mirrored, imgs)


def rotate(images: Any, degrees: Any, *, mode: str = "constant") -> jax.Array:
    """Rotate images counterclockwise (as displayed, row 0 on top) about their centre, bilinearly.

    Output pixel `p` takes the input at `c + R(-theta) (p - c)`, `c` the image
    centre `((h-1)/2, (w-1)/2)`, interpolating the four neighbouring pixels
    bilinearly (outside pixels: 0 or wrapped, by `mode`). 90 degrees equals
    `np.rot90` on square images; 0 degrees is exactly the identity.

    Args:
      images: `(n, h, w)` or `(n, side*side)`.
      degrees: one angle, or one per image `(n,)`; may be traced.
      mode: "constant" (zeros outside) or "wrap".
    """
    _check_mode(mode)
    imgs, shape = _as_images(images)
    return _rotate_kernel(imgs, degrees, mode).reshape(shape)


@partial(jax.jit, static_argnames="mode")
def _rotate_kernel(imgs: jax.Array, degrees: Any, mode: str) -> jax.Array:
    n, h, w = imgs.shape
    theta = jnp.deg2rad(jnp.broadcast_to(jnp.asarray(degrees, imgs.dtype), (n,)))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    # Offsets from the centre with "up" positive, so positive angles turn counterclockwise on screen.
    u = (jnp.arange(w, dtype=imgs.dtype) - cx)[None, :]
    v = (cy - jnp.arange(h, dtype=imgs.dtype))[:, None]

    def one(image, angle):
        cos, sin = jnp.cos(angle), jnp.sin(angle)
        src_col = cx + (u * cos + v * sin)
        src_row = cy - (v * cos - u * sin)
        r0, c0 = jnp.floor(src_row), jnp.floor(src_col)
        fr, fc = src_row - r0, src_col - c0
        r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
        top = _pixel(image, r0, c0, mode) * (1 - fc) + _pixel(image, r0, c0 + 1, mode) * fc
        bottom = _pixel(image, r0 + 1, c0, mode) * (1 - fc) + _pixel(image, r0 + 1, c0 + 1, mode) * fc
        return top * (1 - fr) + bottom * fr

    return jax.vmap(one)(imgs, theta)


def random_rotation(
    key: jax.Array, images: Any, max_degrees: Any = 15, *, mode: str = "constant"
) -> jax.Array:
    """Rotate each image by an angle uniform in `[-max_degrees, max_degrees]` (see `rotate`)."""
    check_range("max_degrees", max_degrees, low=0.0, high=180.0)
    _check_mode(mode)
    imgs, shape = _as_images(images)
    limit = jnp.asarray(max_degrees, imgs.dtype)
    angles = jax.random.uniform(key, (imgs.shape[0],), imgs.dtype, -1.0, 1.0) * limit
    return _rotate_kernel(imgs, angles, mode).reshape(shape)


def compose(*augmentations: Augmentation) -> Augmentation:
    """`(key, x) -> x` applying the augmentations in order, each with its own subkey of `key`."""

    def composed(key: jax.Array, x: Any) -> jax.Array:
        if not augmentations:
            return jnp.asarray(x)
        keys = jax.random.split(key, len(augmentations))
        for k, f in zip(keys, augmentations, strict=True):
            x = f(k, x)
        return x

    return composed


def _noise(key: jax.Array, x: Any, std: Any = 0.2) -> jax.Array:
    # 0.2: the optimizers-and-overfitting lecture's random_noise(var=0.2**2).
    return gaussian_noise(key, x, std)


def _vflip(key: jax.Array, images: Any, p: Any = 0.5) -> jax.Array:
    return random_flip(key, images, p, axis="vertical")


AUGMENTATIONS: dict[str, Callable[..., jax.Array]] = {
    "noise": _noise,
    "shift": random_shift,
    "flip": random_flip,
    "vflip": _vflip,
    "rotation": random_rotation,
}
"""name -> augmentation for `augment`: noise (std=0.2), shift (max_shift=1), flip (p=0.5,
left-right), vflip (p=0.5, up-down), rotation (max_degrees=15)."""


def _check_options(name: str, fn: Callable[..., Any], options: dict[str, Any]) -> None:
    accepted = [p for p in inspect.signature(fn).parameters if p not in ("key", "x", "images")]
    for option in options:
        if option not in accepted:
            raise unknown_choice(f"augmentation {name!r}: option", option, accepted)


def augment(names: Sequence[str | tuple[str, dict[str, Any]]]) -> Augmentation:
    """An augmentation `(key, x) -> x` from a list of names, optionally with keyword arguments.

    Example: `augment(["shift", ("rotation", {"max_degrees": 10}), ("noise", {"std": 0.5})])`.
    Names are those of `AUGMENTATIONS`; applied in the order given.
    """
    if isinstance(names, str):
        names = [names]
    steps = []
    for entry in names:
        name, options = (entry, {}) if isinstance(entry, str) else entry
        if name not in AUGMENTATIONS:
            raise unknown_choice("augmentation", name, AUGMENTATIONS)
        fn = AUGMENTATIONS[name]
        _check_options(name, fn, options)
        steps.append(lambda key, x, fn=fn, options=dict(options): fn(key, x, **options))
    return compose(*steps)

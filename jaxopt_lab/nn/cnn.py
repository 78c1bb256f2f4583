"""A small convolutional network as pure functions: `init(key, input_shape, ...) -> params`, `apply(params, x, ...)`.

Images are NHWC (batch, height, width, channels). Parameters are a plain dict::

    {"conv_0":  {"w": (k_0, k_0, C, c_0), "b": (c_0,)},       # HWIO kernel
     "conv_1":  {"w": (k_1, k_1, c_0, c_1), "b": (c_1,)},
     ...
     "dense_0": {"w": (f, h_1), "b": (h_1,)},                # f: pooled features
     ...
     "dense_m": {"w": (h_m, out_dim), "b": (out_dim,)}}      # logits

so `jaxopt_lab.losses.decay_mask` (leaves named "w") decays every kernel and
weight matrix and no bias. A conv layer ``l`` with stride ``s`` computes, for
every output position ``(i, j)`` and output channel ``o``::

    z[n, i, j, o] = b[o] + sum_{di, dj, c} x_pad[n, s*i + di, s*j + dj, c] * w[di, dj, c, o]
    h = activation(z)

with "SAME" padding: the output has ``ceil(H / s)`` rows (and likewise
columns), and the ``max((ceil(H/s) - 1) * s + k - H, 0)`` padding rows are
split with the smaller half first (TensorFlow's convention, what
`jax.lax.conv_general_dilated(..., padding="SAME")` does). After the last conv
layer the feature maps become one vector per image by

* ``pool="flatten"`` (default): the feature maps flattened row-major,
  ``f = H' * W' * c_last`` (LeNet's way, LeCun et al., 1998): keeps where a
  feature was, at more parameters;
* ``pool="avg"``: global average pooling over height and width (Lin et al.,
  2014), ``f = c_last`` features: few parameters, and the head does not depend
  on the image size, but on images as small as the 8x8 digits it throws away
  most of what a few conv layers find (examples/digits_cnn.toml, one run, seed 0:
  validation accuracy 0.975 flattened, stopped early at epoch 17; 0.908 averaged
  after all 30 epochs).

then the dense layers (`activation` after each hidden one, optional inverted
dropout as in `jaxopt_lab.nn.mlp`) and a last dense layer giving the logits.

`apply` also takes flat rows `(n, H*W*C)` and reshapes them to `input_shape`,
so data sets stored as feature rows (the digits' 64 columns) and the engine's
standardization and batching over rows work unchanged.

References:
  LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
  recognition", Proc. IEEE 86(11), 1998.
  Lin, Chen & Yan, "Network in network", ICLR 2014 (global average pooling).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxopt_lab._checks import ConfigError, check_range, unknown_choice
from jaxopt_lab.losses import decay_mask
from jaxopt_lab.models import Model
from jaxopt_lab.nn.activations import get_activation, recommended_init
from jaxopt_lab.nn.init import get_initializer

__all__ = ["POOLS", "apply", "feature_shape", "from_config", "functions_from_config", "init"]

Params = dict[str, dict[str, jax.Array]]

POOLS: tuple[str, ...] = ("flatten", "avg")

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise ValueError(
            f"input_shape={tuple(input_shape)!r}: need (height, width) or (height, width, channels), all >= 1"
        )
    return shape  # type: ignore[return-value]


def _layers(channels: Sequence[int], kernels: Sequence[int], strides: Sequence[int]) -> list[tuple[int, int, int]]:
    layers = list(zip(channels, kernels, strides, strict=False))
    if not layers or not len(channels) == len(kernels) == len(strides):
        raise ValueError(
            f"channels={list(channels)}, kernels={list(kernels)}, strides={list(strides)}: need one entry per "
            "conv layer in each, at least one layer"
        )
    for name, values in (("channels", channels), ("kernels", kernels), ("strides", strides)):
        if any(int(v) < 1 for v in values):
            raise ValueError(f"{name}={list(values)}: every entry must be >= 1")
    return [(int(c), int(k), int(s)) for c, k, s in layers]


def feature_shape(input_shape: Sequence[int], strides: Sequence[int], channels: Sequence[int]) -> tuple[int, ...]:
    """`(H', W', c_last)`: the shape of the last conv layer's output ("SAME": each stride divides, rounding up)."""
    height, width, _ = _image_shape(input_shape)
    for s in strides:
        height, width = math.ceil(height / int(s)), math.ceil(width / int(s))
    return height, width, int(channels[-1])


def _check_pool(pool: str) -> str:
    if pool not in POOLS:
        raise unknown_choice("pool", pool, POOLS)
    return pool


def init(
    key: jax.Array,
    input_shape: Sequence[int],
    *,
    channels: Sequence[int],
    kernels: Sequence[int],
    strides: Sequence[int],
    dense: Sequence[int] = (),
    out_dim: int,
    init: str = "he_normal",
    activation: str = "relu",
    dtype: Any = jnp.float32,
    init_scale: ArrayLike = 1.0,
    pool: str = "flatten",
) -> Params:
    """Parameters of the CNN for images of `input_shape`.

    Args:
      key: PRNG key; layer i (conv layers first, then dense) draws its weights
        with the i-th of `split(key, n_layers)`.
      input_shape: `(H, W)` or `(H, W, C)` of one image.
      channels: output channels of each conv layer.
      kernels: square kernel size of each conv layer.
      strides: stride of each conv layer (both directions).
      dense: widths of the hidden dense layers after pooling (may be empty).
      out_dim: number of outputs (logits).
      init: initializer name for kernels and weights (fans of a kernel count its
        receptive field: `jaxopt_lab.nn.init.compute_fans`), or "auto" for
        `recommended_init(activation)`. Biases start at zero.
      activation: only used to resolve ``init="auto"`` (and checked).
      dtype: dtype of every parameter.
      init_scale: multiplies the initial weights; may be traced (a sweep over it).
      pool: "flatten" (row-major) or "avg" (global average pooling).

    Returns:
      The parameter dict (module docstring).

    Examples:
      >>> params = init(jax.random.key(0), (8, 8, 1), channels=[8, 16], kernels=[3, 3], strides=[1, 2],
      ...               out_dim=10)
      >>> params["conv_1"]["w"].shape, params["dense_0"]["w"].shape  # 8x8 -> 8x8 -> 4x4, flattened
      ((3, 3, 8, 16), (256, 10))
    """
    height, width, in_channels = _image_shape(input_shape)
    layers = _layers(channels, kernels, strides)
    _check_pool(pool)
    dense = [int(h) for h in dense]
    if any(h < 1 for h in dense) or int(out_dim) < 1:
        raise ValueError(f"dense={dense}, out_dim={out_dim}: layer widths must be >= 1")
    get_activation(activation)
    check_range("init_scale", init_scale, low=0.0)
    initializer = get_initializer(recommended_init(activation) if str(init).lower() == "auto" else init)
    scale = jnp.asarray(init_scale, dtype)
    keys = jax.random.split(key, len(layers) + len(dense) + 1)
    params: Params = {}
    c_in = in_channels
    for i, (c_out, k, _) in enumerate(layers):
        params[f"conv_{i}"] = {
            "w": initializer(keys[i], (k, k, c_in, c_out), dtype) * scale,
            "b": jnp.zeros((c_out,), dtype),
        }
        c_in = c_out
    fh, fw, fc = feature_shape((height, width, in_channels), [s for _, _, s in layers], [c for c, _, _ in layers])
    sizes = [fc if pool == "avg" else fh * fw * fc, *dense, int(out_dim)]
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        params[f"dense_{i}"] = {
            "w": initializer(keys[len(layers) + i], (d_in, d_out), dtype) * scale,
            "b": jnp.zeros((d_out,), dtype),
        }
    return params


def _count(params: Params, prefix: str) -> int:
    n = 0
    while f"{prefix}_{n}" in params:
        n += 1
    return n


def apply(
    params: Params,
    x: ArrayLike,
    *,
    strides: Sequence[int],
    activation: str = "relu",
    input_shape: Sequence[int] | None = None,
    pool: str = "flatten",
    dropout: ArrayLike = 0.0,
    train: bool = False,
    key: jax.Array | None = None,
) -> jax.Array:
    """Logits of the CNN for a batch of images.

    Args:
      params: from `init`.
      x: images `(n, H, W, C)`, or flat rows `(n, H*W*C)` (reshaped row-major to
        `input_shape`); cast to the parameters' dtype.
      strides: the conv strides `init` was given (not stored in the params).
      activation: activation name after every conv and hidden dense layer.
      input_shape: `(H, W[, C])` of one image; needed for flat rows.
      pool: "flatten" or "avg", as the params were built.
      dropout: drop probability in [0, 1) of the hidden dense activations, used
        only when `train` (inverted dropout, as in `jaxopt_lab.nn.mlp`); may be
        traced; a Python 0 skips it.
      train: training mode (dropout) vs inference.
      key: PRNG key for dropout; required when training with dropout.

    Returns:
      Logits of shape `(n, out_dim)`.
    """
    act = get_activation(activation)
    _check_pool(pool)
    check_range("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
    n_conv, n_dense = _count(params, "conv"), _count(params, "dense")
    if n_conv == 0 or n_dense == 0 or len(strides) != n_conv:
        raise ValueError(
            f"params have {n_conv} conv and {n_dense} dense layers and strides={list(strides)}: need at least one "
            "of each and one stride per conv layer"
        )
    dtype = params["conv_0"]["w"].dtype
    h = jnp.asarray(x, dtype)
    if h.ndim == 2:
        if input_shape is None:
            raise ValueError(f"x has shape {h.shape}: flat rows need input_shape=(H, W[, C]) to become images")
        shape = _image_shape(input_shape)
        if math.prod(shape) != h.shape[1]:
            raise ValueError(f"x has {h.shape[1]} features per row but input_shape={shape} holds {math.prod(shape)}")
        h = h.reshape((h.shape[0], *shape))
    if h.ndim != 4 or h.shape[-1] != params["conv_0"]["w"].shape[2]:
        raise ValueError(
            f"x has shape {h.shape}: need images (n, H, W, {params['conv_0']['w'].shape[2]}) or flat rows (n, H*W*C)"
        )
    for i in range(n_conv):
        layer = params[f"conv_{i}"]
        s = int(strides[i])
        z = jax.lax.conv_general_dilated(h, layer["w"], (s, s), "SAME", dimension_numbers=_DIMENSIONS)
        h = act(z + layer["b"])
    h = jnp.mean(h, axis=(1, 2)) if pool == "avg" else h.reshape(h.shape[0], -1)
    if h.shape[-1] != params["dense_0"]["w"].shape[0]:
        raise ValueError(
            f"the pooled features have width {h.shape[-1]} but params['dense_0']['w'] expects "
            f"{params['dense_0']['w'].shape[0]}: pass the pool and input shape the params were built with"
        )
    use_dropout = bool(train) and not (isinstance(dropout, (int, float)) and dropout == 0)
    if use_dropout and key is None:
        raise ValueError("dropout in training needs a PRNG key: pass key=...")
    for i in range(n_dense - 1):
        layer = params[f"dense_{i}"]
        h = act(h @ layer["w"] + layer["b"])
        if use_dropout:
            keep = 1.0 - jnp.asarray(dropout, dtype)
            mask = jax.random.bernoulli(jax.random.fold_in(key, i), keep, h.shape)
            h = jnp.where(mask, h, 0.0) / jnp.maximum(keep, jnp.finfo(dtype).tiny)
    last = params[f"dense_{n_dense - 1}"]
    return h @ last["w"] + last["b"]


def functions_from_config(
    model_config: Any, n_features: int, out_dim: int, dtype: Any = jnp.float32
) -> tuple[Callable[..., Params], Callable[..., jax.Array]]:
    """`(init_fn, apply_fn)`: the CNN a `[model]` config section describes (`kind = "cnn"`), as plain functions.

    Args:
      model_config: a `jaxopt_lab.config.ModelConfig`: `channels`, `kernels`,
        `strides`, `image_shape`, `pool`, `hidden` (the dense layers after
        pooling), `activation`, `init`.
      n_features: features per row of the data; must equal the product of
        `image_shape`.
      out_dim: number of outputs.
      dtype: parameter dtype.

    Returns:
      `init_fn(key, init_scale=1.0) -> params` and
      `apply_fn(params, x, *, train=False, key=None, dropout=0.0) -> logits`,
      `x` being flat rows `(n, n_features)`.

    Raises:
      ConfigError: `model.image_shape` does not hold `n_features` values.
    """

    m = model_config
    shape = _image_shape(m.image_shape) if len(m.image_shape) in (2, 3) else None
    if shape is None or math.prod(shape) != int(n_features):
        raise ConfigError(
            f"model.image_shape = {list(m.image_shape)!r} holds {math.prod(m.image_shape) if m.image_shape else 0} "
            f"values but the data have {n_features} features per row: give [height, width, channels] with "
            "height * width * channels = the number of features"
        )
    conv = {"channels": tuple(m.channels), "kernels": tuple(m.kernels), "strides": tuple(m.strides)}

    def init_fn(key: jax.Array, init_scale: ArrayLike = 1.0) -> Params:
        return init(
            key, shape, **conv, dense=tuple(m.hidden), out_dim=out_dim, init=m.init, activation=m.activation,
            dtype=dtype, init_scale=init_scale, pool=m.pool,
        )

    def apply_fn(
        params: Params, x: ArrayLike, *, train: bool = False, key: jax.Array | None = None, dropout: ArrayLike = 0.0
    ) -> jax.Array:
        return apply(
            params, x, strides=conv["strides"], activation=m.activation, input_shape=shape, pool=m.pool,
            dropout=dropout, train=train, key=key,
        )

    return init_fn, apply_fn


def from_config(model_config: Any, n_features: int, out_dim: int, dtype: Any = jnp.float32) -> Any:
    """The training engine's model (`jaxopt_lab.models.Model`) for `[model] kind = "cnn"`.

    `functions_from_config`'s pair under the engine's protocol: `init(key, hp)`
    reads ``model.init_scale`` from `hp`, `apply(params, model_state, x, *,
    train, key, hp)` reads ``model.dropout`` when the run has it; no model state;
    weight decay and penalties on the kernels and weight matrices
    (`jaxopt_lab.losses.decay_mask`).
    """

    init_fn, apply_fn = functions_from_config(model_config, n_features, out_dim, dtype)

    def model_init(key: jax.Array, hp: Any) -> tuple[Params, dict]:
        return init_fn(key, hp["model.init_scale"]), {}

    def model_apply(params: Params, model_state: Any, x: ArrayLike, *, train: bool, key: Any, hp: Any) -> tuple:
        return apply_fn(params, x, train=train, key=key, dropout=hp.get("model.dropout", 0.0)), model_state

    return Model(init=model_init, apply=model_apply, decay_mask=decay_mask, uses_key=False, name="cnn")

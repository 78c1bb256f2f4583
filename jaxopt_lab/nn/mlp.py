"""Multi-layer perceptrons as pure functions: `init(key, sizes) -> params`, `apply(params, x) -> (y, state)`.

Parameters are a plain dict, one entry per layer::

    {"dense_0": {"w": (d_0, d_1), "b": (d_1,)},        # y = x @ w + b
     "norm_0":  {"scale": (d_1,), "bias": (d_1,)},      # only with norm="batch" or "layer"
     "dense_1": {"w": (d_1, d_2), "b": (d_2,)},
     ...}

A hidden layer computes, in this order (the order of Ioffe & Szegedy, 2015)::

    z = x @ w + b  ->  normalize(z) * scale + bias  ->  activation  ->  dropout

and the last dense layer returns logits: no normalization, activation or dropout.
`sizes=[d, k]` is a single dense layer: linear regression (with `mse`) or
logistic regression (with `binary_cross_entropy` for k = 1, softmax
cross-entropy for k >= 2).

**Batch norm** (the hyperparameter lecture, Ioffe & Szegedy 2015): in training each unit is
standardized with the mean and (biased) variance of the batch, and the running
averages kept in `state` move towards them,
``running = bn_momentum * running + (1 - bn_momentum) * batch`` (Keras/Flax
convention: bn_momentum = 0.9 is PyTorch's momentum = 0.1; the running variance
is the biased batch variance, as in Flax and Keras, where PyTorch stores the
unbiased one). At inference the running averages replace the batch statistics,
so the output for one example does not depend on the rest of the batch.
**Layer norm** (Ba et al., 2016) standardizes each example over its units; it
needs no state and behaves the same in training and at inference.

**Dropout** (Srivastava et al., 2014) is *inverted* dropout: in training each
hidden activation is zeroed with probability ``p`` and the survivors are divided
by the keep probability ``1 - p``; at inference nothing happens. The lectures
(hyperparameter; gradients-and-activations) describe the original form instead: drop without rescaling in
training and multiply the weights by ``1 - p`` at inference. Both keep the
expected input of the next layer equal in training and at inference, and they
are the same network: an inverted-dropout network with outgoing weights ``W``
computes exactly what the lectures' network computes with weights
``W / (1 - p)`` in training and ``(1 - p) * W / (1 - p) = W`` at inference.
Inverted dropout moves the factor into training so that inference is the plain
network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab._checks import check_range, unknown_choice
from jaxopt_lab.nn.activations import get_activation, recommended_init
from jaxopt_lab.nn.init import get_initializer

__all__ = [
    "NORMS",
    "Model",
    "apply",
    "apply_with_hidden",
    "init",
    "init_state",
    "layer_sizes",
    "linear_regression",
    "logistic_regression",
    "make_mlp",
    "num_params",
    "sigmoid_net",
]

Params = dict[str, dict[str, jax.Array]]
State = dict[str, dict[str, jax.Array]]

NORMS: tuple[str, ...] = ("none", "batch", "layer")


def _check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise unknown_choice("norm", norm, NORMS)
    return norm


def init(
    key: jax.Array,
    sizes: Sequence[int],
    *,
    init: str = "he_normal",
    activation: str = "relu",
    norm: str = "none",
    dtype: Any = jnp.float32,
    init_scale: Any = 1.0,
) -> Params:
    """Parameters of an MLP with layer widths `sizes` (input first, output last).

    Args:
      key: PRNG key; layer i draws its weights with the i-th of `split(key, L)`.
      sizes: `[d_in, h_1, ..., d_out]`, at least two positive integers.
      init: initializer name for the weights (see `jaxopt_lab.nn.init`), or
        "auto" for the one `recommended_init(activation)` gives. Biases start
        at zero; norm scales at one and norm biases at zero.
      activation: only used to resolve ``init="auto"`` (and checked).
      norm: "none", "batch" or "layer": adds `norm_i` after every hidden dense.
      dtype: dtype of every parameter (float32 by default).
      init_scale: multiplies the initial weights; may be traced (a sweep over it).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"sizes={sizes!r}: need at least two positive layer widths [d_in, ..., d_out]")
    _check_norm(norm)
    get_activation(activation)
    check_range("init_scale", init_scale, low=0.0)
    name = recommended_init(activation) if str(init).lower() == "auto" else init
    initializer = get_initializer(name)
    scale = jnp.asarray(init_scale, dtype)
    keys = jax.random.split(key, len(sizes) - 1)
    params: Params = {}
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        params[f"dense_{i}"] = {
            "w": initializer(keys[i], (d_in, d_out), dtype) * scale,
            "b": jnp.zeros((d_out,), dtype),
        }
        if norm != "none" and i < len(sizes) - 2:
            params[f"norm_{i}"] = {"scale": jnp.ones((d_out,), dtype), "bias": jnp.zeros((d_out,), dtype)}
    return params


_init = init  # `init` is shadowed by the keyword of the same name in the factories below.


def _dense_count(params: Mapping[str, Any]) -> int:
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict of layers like {{'dense_0': {{'w', 'b'}}}}, got {type(params)}")
    n = 0
    while f"dense_{n}" in params:
        n += 1
    if n == 0:
        raise ValueError(f"params has no 'dense_0' layer (keys: {sorted(params)})")
    return n


def layer_sizes(params: Params) -> list[int]:
    """`[d_in, h_1, ..., d_out]` read from the weight shapes, checking they chain."""
    n = _dense_count(params)
    sizes: list[int] = []
    for i in range(n):
        layer = params[f"dense_{i}"]
        if "w" not in layer or "b" not in layer:
            raise ValueError(f"params['dense_{i}'] needs 'w' and 'b', has {sorted(layer)}")
        w_shape, b_shape = tuple(jnp.shape(layer["w"])), tuple(jnp.shape(layer["b"]))
        if len(w_shape) != 2 or b_shape != w_shape[1:]:
            raise ValueError(
                f"params['dense_{i}']: w has shape {w_shape} and b {b_shape}; need w (in, out) and b (out,)"
            )
        if i and w_shape[0] != sizes[-1]:
            raise ValueError(
                f"params['dense_{i}']['w'] has shape {w_shape}: expects {w_shape[0]} inputs but "
                f"dense_{i - 1} gives {sizes[-1]}"
            )
        if not i:
            sizes.append(w_shape[0])
        sizes.append(w_shape[1])
    return sizes


def _check_structure(params: Params, norm: str) -> list[int]:
    sizes = layer_sizes(params)
    hidden = len(sizes) - 2
    for i in range(hidden):
        key = f"norm_{i}"
        if norm == "none":
            if key in params:
                raise ValueError(f"params has {key!r} but norm='none': pass the norm the params were built with")
            continue
        if key not in params:
            raise ValueError(f"norm={norm!r} needs params[{key!r}]; build params with init(..., norm={norm!r})")
        for leaf in ("scale", "bias"):
            shape = tuple(jnp.shape(params[key].get(leaf, jnp.zeros((0, 0)))))
            if shape != (sizes[i + 1],):
                raise ValueError(f"params[{key!r}][{leaf!r}] has shape {shape}, needs ({sizes[i + 1]},)")
    return sizes


def init_state(params: Params, norm: str) -> State:
    """The model state: `{}` unless `norm == "batch"`, else the running statistics.

    ``{"norm_i": {"mean": zeros(h), "var": ones(h)}}`` per batch-norm layer,
    in the dtype of that layer's scale.
    """
    _check_norm(norm)
    if norm != "batch":
        return {}
    sizes = _check_structure(params, norm)
    state: State = {}
    for i in range(len(sizes) - 2):
        dtype = params[f"norm_{i}"]["scale"].dtype
        state[f"norm_{i}"] = {
            "mean": jnp.zeros((sizes[i + 1],), dtype),
            "var": jnp.ones((sizes[i + 1],), dtype),
        }
    return state


def _standardize(z: jax.Array, mean: jax.Array, var: jax.Array, eps: Any) -> jax.Array:
    return (z - mean) * jax.lax.rsqrt(var + eps)


def _check_forward(
    params: Params,
    x: jax.Array,
    state: State | None,
    *,
    norm: str,
    dropout: Any,
    train: bool,
    key: jax.Array | None,
    bn_momentum: Any,
    norm_eps: Any,
    where: jax.Array | None,
) -> tuple[list[int], bool, State | None]:
    """Every check of `_forward`'s arguments: (layer sizes, whether dropout runs, the state to use).

    In training with batch norm and no `state`, the state starts fresh (`init_state`).
    """
    _check_norm(norm)
    check_range("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
    check_range("bn_momentum", bn_momentum, low=0.0, high=1.0)
    check_range("norm_eps", norm_eps, low=0.0, low_inclusive=False)
    sizes = _check_structure(params, norm)
    x_shape = tuple(jnp.shape(x))
    if len(x_shape) == 0 or x_shape[-1] != sizes[0]:
        raise ValueError(
            f"x has shape {x_shape} but params['dense_0']['w'] has shape {(sizes[0], sizes[1])}: "
            f"x's last axis must have {sizes[0]} features"
        )
    # A Python zero is a structural "no dropout"; anything else (a traced rate too) builds the masks.
    use_dropout = bool(train) and not (isinstance(dropout, (int, float)) and dropout == 0)
    if use_dropout and key is None:
        raise ValueError("dropout in training needs a PRNG key: pass key=...")
    if norm == "batch":
        if train and len(x_shape) < 2:
            raise ValueError(f"batch norm in training needs a batch: x of shape (n, {sizes[0]}), got {x_shape}")
        if state is None and train:
            state = init_state(params, norm)
        if state is None or any(f"norm_{i}" not in state for i in range(len(sizes) - 2)):
            raise ValueError("batch norm needs the running statistics: pass state=init_state(params, 'batch')")
    if where is not None and tuple(jnp.shape(where)) != x_shape[:-1]:
        raise ValueError(f"where has shape {tuple(jnp.shape(where))}, needs x's batch shape {x_shape[:-1]}")
    return sizes, use_dropout, state


def _batch_statistics(
    z: jax.Array, batch_axes: tuple[int, ...], where: jax.Array | None, dtype: Any
) -> tuple[jax.Array, jax.Array]:
    """Mean and biased variance of `z` over the batch axes, leaving out rows where `where` is False."""
    if where is None:
        mean = jnp.mean(z, axis=batch_axes)
        var = jnp.mean(jnp.square(z - mean), axis=batch_axes)
        return mean, var
    # Padding rows (where=False) must not move the statistics.
    w = jnp.asarray(where, dtype)[..., None]
    count = jnp.maximum(jnp.sum(w, axis=batch_axes), 1.0)
    mean = jnp.sum(w * z, axis=batch_axes) / count
    var = jnp.sum(w * jnp.square(z - mean), axis=batch_axes) / count
    return mean, var


def _batch_norm(
    z: jax.Array,
    running: Mapping[str, jax.Array],
    *,
    train: bool,
    batch_axes: tuple[int, ...],
    where: jax.Array | None,
    bn_momentum: Any,
    norm_eps: Any,
    dtype: Any,
) -> tuple[jax.Array, Mapping[str, jax.Array]]:
    """Batch-normalized `z` (before scale and bias) and the layer's new running statistics.

    Training uses the batch's statistics and moves the running averages towards them;
    inference uses the running averages and leaves them as they are. `dtype` (the
    parameters') is the dtype of the mask and momentum.
    """
    if not train:
        return _standardize(z, running["mean"], running["var"], norm_eps), running
    mean, var = _batch_statistics(z, batch_axes, where, dtype)
    m = jnp.asarray(bn_momentum, dtype)
    new_running = {
        "mean": m * running["mean"] + (1 - m) * mean,
        "var": m * running["var"] + (1 - m) * var,
    }
    return _standardize(z, mean, var, norm_eps), new_running


def _layer_norm(z: jax.Array, norm_eps: Any) -> jax.Array:
    """`z` standardized over its units, per example (before scale and bias)."""
    mean = jnp.mean(z, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(z - mean), axis=-1, keepdims=True)
    return _standardize(z, mean, var, norm_eps)


def _inverted_dropout(h: jax.Array, dropout: Any, key: jax.Array, layer: int, dtype: Any) -> jax.Array:
    """Zero each activation with probability `dropout`, survivors divided by the keep probability.

    The mask of hidden layer `layer` comes from ``fold_in(key, layer)``; `dtype` (the parameters')
    is the dtype of the keep probability.
    """
    keep = 1.0 - jnp.asarray(dropout, dtype)
    mask = jax.random.bernoulli(jax.random.fold_in(key, layer), keep, h.shape)
    # max(): a traced rate of exactly 1 would otherwise give 0 * inf = nan.
    return jnp.where(mask, h, 0.0) / jnp.maximum(keep, jnp.finfo(dtype).tiny)


def _forward(
    params: Params,
    x: jax.Array,
    state: State | None,
    *,
    activation: str,
    norm: str,
    dropout: Any,
    train: bool,
    key: jax.Array | None,
    bn_momentum: Any,
    norm_eps: Any,
    where: jax.Array | None,
    capture: bool,
) -> tuple[jax.Array, State, dict[str, dict[str, jax.Array]]]:
    act = get_activation(activation)
    sizes, use_dropout, state = _check_forward(
        params, x, state, norm=norm, dropout=dropout, train=train, key=key, bn_momentum=bn_momentum,
        norm_eps=norm_eps, where=where,
    )
    batch_axes = tuple(range(len(jnp.shape(x)) - 1))
    dtype = params["dense_0"]["w"].dtype
    h = jnp.asarray(x, dtype)
    new_state: State = dict(state) if state else {}
    hidden: dict[str, dict[str, jax.Array]] = {}
    n_hidden = len(sizes) - 2
    for i in range(n_hidden):
        layer = params[f"dense_{i}"]
        z = h @ layer["w"] + layer["b"]
        if norm == "layer":
            z = _layer_norm(z, norm_eps)
        elif norm == "batch":
            z, new_state[f"norm_{i}"] = _batch_norm(
                z, state[f"norm_{i}"], train=train, batch_axes=batch_axes, where=where,
                bn_momentum=bn_momentum, norm_eps=norm_eps, dtype=dtype,
            )
        if norm != "none":
            z = z * params[f"norm_{i}"]["scale"] + params[f"norm_{i}"]["bias"]
        h = act(z)
        if capture:
            hidden[f"dense_{i}"] = {"pre": z, "post": h}
        if use_dropout:
            h = _inverted_dropout(h, dropout, key, i, dtype)
    last = params[f"dense_{n_hidden}"]
    return h @ last["w"] + last["b"], new_state, hidden


def apply(
    params: Params,
    x: jax.Array,
    state: State | None = None,
    *,
    activation: str = "relu",
    norm: str = "none",
    dropout: Any = 0.0,
    train: bool = False,
    key: jax.Array | None = None,
    bn_momentum: Any = 0.9,
    norm_eps: Any = 1e-5,
    where: jax.Array | None = None,
) -> tuple[jax.Array, State]:
    """Logits of the MLP for inputs `x` of shape `(..., d_in)`, and the new state.

    Args:
      params: from `init` (or any dict of the same layout).
      x: inputs; cast to the parameters' dtype. Leading axes are the batch.
      state: `init_state(params, norm)`; only batch norm uses it (required at
        inference, started fresh when None in training).
      activation: hidden activation name (the output layer has none).
      norm: "none", "batch" or "layer", as the params were built.
      dropout: drop probability in [0, 1) of hidden activations, used only when
        `train`; may be traced (a Python 0 skips dropout altogether). Inverted
        dropout: survivors are divided by 1 - dropout in training, which equals
        the lectures' multiplying the weights by 1 - p at inference (module docstring).
      train: training mode (batch statistics, dropout) vs inference.
      key: PRNG key for dropout; required when training with dropout.
      bn_momentum: weight of the old running averages (may be traced).
      norm_eps: added to the variance in batch and layer norm.
      where: optional boolean mask over the batch; rows where it is False
        (padding) are left out of the batch-norm statistics.

    Returns:
      `(logits, new_state)`; `new_state` is `state` unless batch norm trained.

    Raises:
      ValueError: for shapes of `x` and `params` that do not fit, params that do
        not match `norm`, unknown names, and concrete values out of range.
    """
    out, new_state, _ = _forward(
        params, x, state, activation=activation, norm=norm, dropout=dropout, train=train, key=key,
        bn_momentum=bn_momentum, norm_eps=norm_eps, where=where, capture=False,
    )  # fmt: skip
    return out, new_state


def apply_with_hidden(
    params: Params,
    x: jax.Array,
    state: State | None = None,
    *,
    activation: str = "relu",
    norm: str = "none",
    train: bool = False,
    norm_eps: Any = 1e-5,
) -> tuple[jax.Array, dict[str, dict[str, jax.Array]]]:
    """`apply` without dropout that also returns every hidden layer.

    Returns `(logits, hidden)` with ``hidden["dense_i"] = {"pre": z, "post": act(z)}``,
    `z` being the input of the activation (after normalization). With batch
    norm, `train=True` uses the batch's statistics (no state needed).
    """
    out, _, hidden = _forward(
        params, x, state, activation=activation, norm=norm, dropout=0.0, train=train, key=None,
        bn_momentum=0.9, norm_eps=norm_eps, where=None, capture=True,
    )  # fmt: skip
    return out, hidden


def num_params(params: Any) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(np.prod(jnp.shape(leaf), dtype=np.int64) for leaf in jax.tree_util.tree_leaves(params)))


class Model(NamedTuple):
    """A model bound to its configuration.

    Attributes:
      init: `key -> params`.
      apply: `(params, x, state=None, **kw) -> (logits, new_state)`; `kw` are
        `apply`'s remaining keywords (dropout, train, key, ...).
      init_state: `params -> state`.
    """

    init: Callable[[jax.Array], Params]
    apply: Callable[..., tuple[jax.Array, State]]
    init_state: Callable[[Params], State]


def make_mlp(
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    init: str = "he_normal",
    norm: str = "none",
    dtype: Any = jnp.float32,
    init_scale: Any = 1.0,
) -> Model:
    """An MLP with its configuration bound: `Model(init, apply, init_state)`."""
    sizes = list(sizes)
    _check_norm(norm)
    get_activation(activation)
    init_name = init

    def init_fn(key: jax.Array) -> Params:
        return _init(key, sizes, init=init_name, activation=activation, norm=norm, dtype=dtype, init_scale=init_scale)

    def apply_fn(params: Params, x: jax.Array, state: State | None = None, **kwargs: Any):
        return apply(params, x, state, activation=activation, norm=norm, **kwargs)

    return Model(init_fn, apply_fn, lambda params: init_state(params, norm))


def linear_regression(n_features: int, n_outputs: int = 1, *, dtype: Any = jnp.float32) -> Model:
    """`y = x @ w + b`, one dense layer starting at zero; train it with `mse`."""
    return make_mlp([n_features, n_outputs], activation="linear", init="zeros", dtype=dtype)


def logistic_regression(n_features: int, n_classes: int = 2, *, dtype: Any = jnp.float32) -> Model:
    """Logistic regression as one dense layer starting at zero.

    `n_classes == 2` gives one logit (use `binary_cross_entropy`); more give one
    logit per class (multinomial, use `softmax_cross_entropy`).
    """
    if int(n_classes) < 2:
        raise ValueError(f"n_classes={n_classes!r} is out of range: valid range is [2, inf)")
    n_out = 1 if int(n_classes) == 2 else int(n_classes)
    return make_mlp([n_features, n_out], activation="linear", init="zeros", dtype=dtype)


def sigmoid_net(
    n_inputs: int,
    n_hidden: int,
    n_outputs: int = 1,
    *,
    init: str = "glorot_uniform",
    dtype: Any = jnp.float32,
) -> Model:
    """The two-layer sigmoid network of the initialization-and-quartic lecture.

    ``Z1 = X W1 + b1, A1 = sigmoid(Z1), Z2 = A1 W2 + b2, A2 = sigmoid(Z2)``,
    trained on the cross-entropy of `A2`. Here `W1, b1 = dense_0` and
    `W2, b2 = dense_1`, and `apply` returns the logits `Z2`: the probabilities
    are `sigmoid(Z2)` and the lecture's loss is `binary_cross_entropy(Z2, Y)`,
    computed from the logits so it stays finite when `A2` rounds to 0 or 1. Its
    gradient is the lecture's backward pass, e.g.
    ``dL/dW2 = (1/m) A1^T (A2 - Y)``.
    """
    return make_mlp([n_inputs, n_hidden, n_outputs], activation="sigmoid", init=init, dtype=dtype)

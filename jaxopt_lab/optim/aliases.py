"""Optimizers that read like their formula: each a `chain(...)` of `jaxopt_lab.optim.transforms`.

Every optimizer optax also has keeps optax's name, keyword names and defaults
and, given the same explicit arguments, follows the same trajectory (tested to
1e-9 relative in float64 over 100 steps). Documented differences:

* `adadelta(learning_rate=None)`: optax applies no learning rate at all when it
  is None, so its default *ascends* the loss; here None means 1.0 (Zeiler's and
  PyTorch's step), a descent.

Extra keywords reproduce PyTorch where it differs (each tested against
`torch.optim` step by step): `adagrad(eps_in_sqrt=False, lr_decay=...)`,
`rmsprop(eps_in_sqrt=False)` (optax's own keyword), `nadam(momentum_decay=...)`,
`amsgrad(max_before_bias_correction=True)`, `radam(eps_before_bias_correction=True)`.
PyTorch's coupled `weight_decay=` is `chain(add_l2_penalty_grad(wd), optimizer)`.

Optimizers optax lacks follow PyTorch or the paper: `asgd`, `adabound`, and the
lecture's `gradient_lr_control`. See docs/optimizers.md for the full table.
"""

from typing import Any

import jax
import jax.numpy as jnp

from jaxopt_lab.optim import transforms as tr
from jaxopt_lab.optim.base import (
    GradientTransformationExtraArgs,
    ScalarOrSchedule,
    chain,
    check_range,
    identity,
)

__all__ = [
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "nadam",
    "nadamw",
    "adamax",
    "adamaxw",
    "amsgrad",
    "lion",
    "radam",
    "adabelief",
    "lamb",
    "yogi",
    "noisy_sgd",
    "sign_sgd",
    "adabound",
    "asgd",
    "asgd_averaged_params",
    "gradient_lr_control",
    "lecture_gradient_lr_control",
]


def _check_lr(learning_rate: Any) -> None:
    check_range("learning_rate", learning_rate, low=0.0)


def _check_momentum(momentum: jax.typing.ArrayLike) -> None:
    if momentum is not None:
        check_range("momentum", momentum, low=0.0, high=1.0)


# --------------------------------------------------------------------------- SGD family


def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: jax.typing.ArrayLike | None = None,
    nesterov: bool = False,
    accumulator_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformationExtraArgs:
    r"""Stochastic gradient descent, optionally with heavy-ball or Nesterov momentum.

    .. math::
        v_t = g_t + \mu v_{t-1}, \qquad
        x_{t+1} = x_t - \eta_t v_t \ \ \text{or (Nesterov)} \ \ x_t - \eta_t (g_t + \mu v_t).

    Same as `optax.sgd` and as `torch.optim.SGD(momentum=mu, nesterov=...)`
    (dampening 0). With a constant rate it is also the lectures' displacement
    form :math:`m \leftarrow \mu m - \alpha f'(x),\ x \leftarrow x + m`
    (Nesterov: :math:`x \leftarrow x + \mu m - \alpha f'(x)`), with :math:`m = -\alpha v`.

    Args:
      learning_rate: :math:`\eta \ge 0`, a float, JAX scalar or schedule.
      momentum: :math:`\mu \in [0, 1]`, or None for plain SGD (no state).
      nesterov: Nesterov's look-ahead (Sutskever et al., 2013).
      accumulator_dtype: dtype of the velocity (default: the parameters').

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.sgd(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.79999995 -1.5999999 ]

    References:
      Polyak, `Some methods of speeding up the convergence of iteration methods
        <https://doi.org/10.1016/0041-5553(64)90137-5>`_, 1964
      Sutskever et al., `On the importance of initialization and momentum in deep learning
        <https://proceedings.mlr.press/v28/sutskever13.html>`_, 2013
    """
    _check_lr(learning_rate)
    _check_momentum(momentum)
    head = identity() if momentum is None else tr.trace(momentum, nesterov, accumulator_dtype)
    return chain(head, tr.scale_by_learning_rate(learning_rate))


def momentum(
    learning_rate: ScalarOrSchedule,
    momentum: jax.typing.ArrayLike = 0.9,
    nesterov: bool = False,
    accumulator_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformationExtraArgs:
    """Heavy-ball SGD: `sgd(learning_rate, momentum=momentum)` (default momentum 0.9).

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      momentum: the momentum coefficient in [0, 1], or None for none.
      nesterov: use Nesterov's look-ahead momentum.
      accumulator_dtype: dtype of the velocity (default: the parameters').

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.momentum(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.79999995 -1.5999999 ]

    References:
      Polyak, `Some methods of speeding up the convergence of iteration methods
        <https://doi.org/10.1016/0041-5553(64)90137-5>`_, 1964
      Sutskever et al., `On the importance of initialization and momentum in deep learning
        <https://proceedings.mlr.press/v28/sutskever13.html>`_, 2013
    """
    return sgd(learning_rate, momentum=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)


def nesterov(
    learning_rate: ScalarOrSchedule,
    momentum: jax.typing.ArrayLike = 0.9,
    accumulator_dtype: jax.typing.DTypeLike | None = None,
) -> GradientTransformationExtraArgs:
    """Nesterov accelerated gradient: `sgd(learning_rate, momentum=momentum, nesterov=True)`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      momentum: the momentum coefficient in [0, 1], or None for none.
      accumulator_dtype: dtype of the velocity (default: the parameters').

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.nesterov(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.62 -1.24]

    References:
      Polyak, `Some methods of speeding up the convergence of iteration methods
        <https://doi.org/10.1016/0041-5553(64)90137-5>`_, 1964
      Sutskever et al., `On the importance of initialization and momentum in deep learning
        <https://proceedings.mlr.press/v28/sutskever13.html>`_, 2013
    """
    return sgd(learning_rate, momentum=momentum, nesterov=True, accumulator_dtype=accumulator_dtype)


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: jax.typing.ArrayLike = 0.01,
    gamma: jax.typing.ArrayLike = 0.55,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformationExtraArgs:
    r"""SGD with annealed Gaussian gradient noise (Neelakantan et al., 2015), as `optax.noisy_sgd`.

    .. math:: x_{t+1} = x_t - \eta_t\,(g_t + \sigma_t\xi_t), \quad \sigma_t^2 = \text{eta}/t^{\gamma}.

    Without a `key` it warns and uses key 0, as optax does; `seed` is optax's deprecated alias.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      eta: initial noise variance (>= 0).
      gamma: annealing exponent of the noise variance (>= 0).
      key: a JAX PRNG key or an int seed; None warns and uses 0 (as optax).
      seed: deprecated alias of `key` (optax's keyword).

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.noisy_sgd(0.1, key=0)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.798     -1.5922999]

    References:
      Neelakantan et al., `Adding Gradient Noise Improves Learning for Very Deep Networks
        <https://arxiv.org/abs/1511.06807>`_, 2015
    """
    _check_lr(learning_rate)
    return chain(tr.add_noise(eta, gamma, key, seed=seed), tr.scale_by_learning_rate(learning_rate))


def sign_sgd(learning_rate: ScalarOrSchedule) -> GradientTransformationExtraArgs:
    r"""signSGD (Bernstein et al., 2018): :math:`x_{t+1} = x_t - \eta_t\,\mathrm{sign}(g_t)`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.sign_sgd(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9 -1.9]

    References:
      Bernstein et al., `signSGD: Compressed Optimisation for Non-Convex Problems <https://arxiv.org/abs/1802.04434>`_,
        2018
    """
    _check_lr(learning_rate)
    return chain(tr.scale_by_sign(), tr.scale_by_learning_rate(learning_rate))


def asgd(
    learning_rate: ScalarOrSchedule = 1e-2,
    lambd: jax.typing.ArrayLike = 1e-4,
    alpha: jax.typing.ArrayLike = 0.75,
    t0: jax.typing.ArrayLike = 1e6,
    weight_decay: ScalarOrSchedule = 0.0,
) -> GradientTransformationExtraArgs:
    r"""Averaged SGD with PyTorch's semantics (`torch.optim.ASGD`; Polyak & Juditsky, 1992).

    .. math::
        \eta_t = \frac{\alpha_0}{(1 + \lambda\alpha_0 (t-1))^{a}}, \quad
        x_{t} = x_{t-1} - \eta_t\big(g_t + \text{wd}\,x_{t-1}\big) - \lambda\eta_t x_{t-1},
        \quad t = 1, 2, \dots

    and the average :math:`\bar x_t` of `average_iterates(t0)` (equal to
    :math:`x_t` until step :math:`t_0 + 2`, then the running mean). Read it with
    `asgd_averaged_params(opt_state)`; evaluate the model there.

    Args:
      learning_rate: :math:`\alpha_0` (PyTorch's `lr`); a schedule is evaluated
        at the step count and used in place of :math:`\alpha_0`.
      lambd: decay term :math:`\lambda \ge 0` (shrinks the weights and the rate).
      alpha: power :math:`a \ge 0` of the rate's decay.
      t0: step at which averaging starts.
      weight_decay: PyTorch's coupled L2 coefficient (>= 0).

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.asgd(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.79999995 -1.5999999 ]

    References:
      Polyak & Juditsky, `Acceleration of Stochastic Approximation by Averaging <https://doi.org/10.1137/0330046>`_,
        1992
      PyTorch, `torch.optim.ASGD <https://pytorch.org/docs/stable/generated/torch.optim.ASGD.html>`_
    """
    _check_lr(learning_rate)
    check_range("lambd", lambd, low=0.0)
    check_range("alpha", alpha, low=0.0)
    check_range("weight_decay", weight_decay, low=0.0)

    def eta(count):
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        return lr / (1 + lambd * lr * count) ** alpha

    return chain(
        tr.add_l2_penalty_grad(weight_decay),
        tr.add_decayed_weights(lambd),
        tr.scale_by_learning_rate(eta),
        tr.average_iterates(t0),
    )


def asgd_averaged_params(opt_state: Any) -> Any:
    """The averaged parameters :math:`\\bar x_t` of an `asgd` state (PyTorch's `state['ax']`).

    Args:
      opt_state: an optimizer state holding an `average_iterates` state (e.g. `asgd`'s).

    Returns:
      The averaged parameters, a tree like the parameters.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.asgd(0.1, t0=0)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> for _ in range(3):
      ...     updates, state = opt.update(2 * params, state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(optim.asgd_averaged_params(state).round(4))
      [ 0.576 -1.152]

    References:
      Polyak & Juditsky, `Acceleration of Stochastic Approximation by Averaging <https://doi.org/10.1137/0330046>`_,
        1992
      PyTorch, `torch.optim.ASGD <https://pytorch.org/docs/stable/generated/torch.optim.ASGD.html>`_
    """
    return tr.averaged_params(opt_state)


def gradient_lr_control(
    learning_rate: ScalarOrSchedule = 0.1, control_factor: jax.typing.ArrayLike = 0.99
) -> GradientTransformationExtraArgs:
    r"""Gradient descent with the lecture's gradient-based learning-rate control (the quartic lecture).

    .. math::
        \alpha_t = \frac{\alpha_{t-1}}{1 + c\sqrt{|g_t|}}, \qquad x_{t+1} = x_t - \alpha_t g_t,
        \qquad \alpha_0 = \text{learning\_rate},

    per element (each parameter keeps its own rate in the state). Defaults are
    the lecture's (`alpha=0.1`, `alpha_control_fac=0.99`). The lecture notes it
    is risky: the rate only shrinks, and shrinks most where gradients are large.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      control_factor: the shrink factor :math:`c \ge 0` of the per-element rate (0 gives plain GD).

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.gradient_lr_control(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9167    -1.8657999]

    References:
      the lecture's `vanilla_gd_gradlr`; see docs/optimizers.md
    """
    _check_lr(learning_rate)
    return chain(tr.scale_by_gradient_lr_control(control_factor), tr.scale_by_learning_rate(learning_rate))


#: The name the lecture's code uses (`vanilla_gd_gradlr`), spelled out.
lecture_gradient_lr_control = gradient_lr_control


# --------------------------------------------------------------------------- AdaGrad / RMSProp / AdaDelta


def adagrad(
    learning_rate: ScalarOrSchedule,
    initial_accumulator_value: jax.typing.ArrayLike = 0.1,
    eps: jax.typing.ArrayLike = 1e-7,
    *,
    eps_in_sqrt: bool = True,
    lr_decay: jax.typing.ArrayLike | None = None,
) -> GradientTransformationExtraArgs:
    r"""AdaGrad (Duchi, Hazan & Singer, 2011).

    .. math::
        s_t = s_{t-1} + g_t^2, \qquad
        x_{t+1} = x_t - \frac{\eta_t}{1 + (t-1)\,d}\; \frac{g_t}{\sqrt{s_t + \epsilon}}.

    Defaults are optax's. PyTorch's `Adagrad(lr, lr_decay=d, initial_accumulator_value=0, eps=1e-10)`
    is `adagrad(lr, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False, lr_decay=d)`.

    Args:
      learning_rate: :math:`\eta`.
      initial_accumulator_value: :math:`s_0 \ge 0` (optax 0.1, PyTorch 0).
      eps: stabilizer (optax 1e-7 in the root, PyTorch 1e-10 outside).
      eps_in_sqrt: `False` gives PyTorch's :math:`g/(\sqrt{s}+\epsilon)`.
      lr_decay: PyTorch's inverse-time decay :math:`d \ge 0` of the rate; None (default) for none.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.adagrad(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9012    -1.9002999]

    References:
      Duchi, Hazan & Singer, `Adaptive Subgradient Methods for Online Learning and Stochastic Optimization
        <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011
    """
    _check_lr(learning_rate)
    lr = learning_rate
    if lr_decay is not None:
        check_range("lr_decay", lr_decay, low=0.0)

        def lr(count):
            base = learning_rate(count) if callable(learning_rate) else learning_rate
            return base / (1 + count * lr_decay)

    return chain(
        tr.scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=eps_in_sqrt),
        tr.scale_by_learning_rate(lr),
    )


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-8,
    initial_scale: jax.typing.ArrayLike = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: jax.typing.ArrayLike | None = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> GradientTransformationExtraArgs:
    r"""RMSProp (Tieleman & Hinton, 2012), centered (Graves, 2013) and with momentum.

    .. math::
        \nu_t = \rho\nu_{t-1} + (1-\rho) g_t^2, \quad
        d_t = \frac{g_t}{\sqrt{\nu_t + \epsilon}} \ \Big(\text{centered: } \nu_t - \mu_t^2\Big), \quad
        b_t = \beta b_{t-1} + \eta_t d_t, \quad x_{t+1} = x_t - b_t \ (\text{or } x_t - \eta_t d_t).

    Same as `optax.rmsprop` (momentum applied after the learning rate). PyTorch's
    `RMSprop(lr, alpha=rho, eps, centered, momentum)` is
    `rmsprop(lr, decay=rho, eps=eps, eps_in_sqrt=False, centered=..., momentum=...)`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      decay: decay of the moving averages, in [0, 1].
      eps: stabilizer of the root (inside it by default, added to it with `eps_in_sqrt=False`).
      initial_scale: initial value of the second-moment accumulator.
      eps_in_sqrt: eps inside the root (optax's default) or added to the root (`False`, PyTorch's).
      centered: scale by the running standard deviation (Graves, 2013) instead of the RMS.
      momentum: the momentum coefficient in [0, 1], or None for none.
      nesterov: use Nesterov's look-ahead momentum.
      bias_correction: divide the moments by :math:`1 - \rho^t` as Adam does.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.rmsprop(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.6838 -1.6838]

    References:
      Tieleman & Hinton, `Lecture 6.5, rmsprop
        <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_, 2012
      Graves, `Generating Sequences With Recurrent Neural Networks <https://arxiv.org/abs/1308.0850>`_, 2013
    """
    _check_lr(learning_rate)
    _check_momentum(momentum)
    scaling = tr.scale_by_stddev if centered else tr.scale_by_rms
    return chain(
        scaling(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
        ),
        tr.scale_by_learning_rate(learning_rate),
        tr.trace(momentum, nesterov) if momentum is not None else identity(),
    )


def adadelta(
    learning_rate: ScalarOrSchedule | None = None,
    rho: jax.typing.ArrayLike = 0.9,
    eps: jax.typing.ArrayLike = 1e-6,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Any = None,
) -> GradientTransformationExtraArgs:
    r"""AdaDelta (Zeiler, 2012), with PyTorch's learning rate and coupled weight decay.

    .. math::
        x_{t+1} = x_t - \eta_t\,\frac{\sqrt{E[\Delta^2]_{t-1}+\epsilon}}{\sqrt{E[g^2]_t+\epsilon}}\,
        (g_t + \lambda x_t).

    **Differs from optax on purpose:** `learning_rate=None` (the default) means
    1.0, Zeiler's step and `torch.optim.Adadelta`'s default. optax applies no
    scaling at all for None, so `optax.adadelta()` moves *along* the gradient
    (ascent). With an explicit learning rate the two agree, and
    `adadelta(lr, rho, eps, weight_decay=wd)` equals `torch.optim.Adadelta(lr, rho, eps, wd)`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      rho: decay of the moving averages, in [0, 1].
      eps: stabilizer inside both roots (> 0; it also sets the first step's size).
      weight_decay: decoupled weight-decay coefficient (>= 0), or a schedule.
      weight_decay_mask: as `mask`, for the coupled weight decay.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.adadelta(1.0)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.99679995 -1.9968    ]

    References:
      Zeiler, `ADADELTA: An Adaptive Learning Rate Method <https://arxiv.org/abs/1212.5701>`_, 2012
    """
    if learning_rate is None:
        learning_rate = 1.0
    _check_lr(learning_rate)
    return chain(
        tr.add_l2_penalty_grad(weight_decay, mask=weight_decay_mask),
        tr.scale_by_adadelta(rho=rho, eps=eps),
        tr.scale_by_learning_rate(learning_rate),
    )


# --------------------------------------------------------------------------- Adam family


def adam(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Adam (Kingma & Ba, 2015).

    .. math:: x_{t+1} = x_t - \eta_t \frac{\hat m_t}{\sqrt{\hat v_t + \epsilon_r} + \epsilon}.

    See `scale_by_adam` for the moments. Same as `optax.adam` and `torch.optim.Adam`
    (PyTorch's `weight_decay=wd` is `chain(add_l2_penalty_grad(wd), adam(...))`;
    its `amsgrad=True` is `amsgrad(..., max_before_bias_correction=True)`).
    State: exactly two moment trees and a step count.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      eps: stabilizer added to the root of the second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      mu_dtype: dtype of the first moment (default: the parameters').
      nesterov: use Nesterov's look-ahead momentum.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.adam(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9 -1.9]

    References:
      Kingma & Ba, `Adam: A Method for Stochastic Optimization <https://arxiv.org/abs/1412.6980>`_, 2015
    """
    _check_lr(learning_rate)
    return chain(
        tr.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
        tr.scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
) -> GradientTransformationExtraArgs:
    r"""AdamW (Loshchilov & Hutter, 2019): Adam plus decoupled weight decay.

    .. math::
        x_{t+1} = x_t - \eta_t\Big(\frac{\hat m_t}{\sqrt{\hat v_t+\epsilon_r}+\epsilon} + \lambda x_t\Big).

    Same as `optax.adamw` and `torch.optim.AdamW` (which writes the decay as
    :math:`x(1-\eta\lambda)`: the same step). Defaults are optax's
    (`weight_decay=1e-4`; PyTorch's default is 1e-2). `mask` selects the decayed leaves.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      eps: stabilizer added to the root of the second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      mu_dtype: dtype of the first moment (default: the parameters').
      weight_decay: decoupled weight-decay coefficient (>= 0), or a schedule.
      mask: a pytree of booleans like the parameters (or a function `params -> mask`) selecting the decayed leaves.
      nesterov: use Nesterov's look-ahead momentum.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.adamw(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9 -1.9]

    References:
      Loshchilov & Hutter, `Decoupled Weight Decay Regularization <https://arxiv.org/abs/1711.05101>`_, 2019
    """
    _check_lr(learning_rate)
    return chain(
        tr.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
        tr.add_decayed_weights(weight_decay, mask),
        tr.scale_by_learning_rate(learning_rate),
    )


def nadam(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    *,
    nesterov: bool = True,
    momentum_decay: jax.typing.ArrayLike | None = None,
) -> GradientTransformationExtraArgs:
    r"""NAdam (Dozat, 2016): Adam with a Nesterov look-ahead first moment.

    Default (`momentum_decay=None`): optax's NAdam, `adam(..., nesterov=True)`,
    :math:`\hat m_t = \frac{\beta_1 m_t}{1-\beta_1^{t+1}} + \frac{(1-\beta_1)g_t}{1-\beta_1^t}`.

    `momentum_decay=psi` (PyTorch's default 4e-3) switches to Dozat's scheduled
    momentum :math:`\mu_t = \beta_1(1 - \frac12 0.96^{t\psi})` of `scale_by_nadam`,
    which is `torch.optim.NAdam(lr, betas, eps, momentum_decay=psi)` exactly.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      eps: stabilizer added to the root of the second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      mu_dtype: dtype of the first moment (default: the parameters').
      nesterov: use Nesterov's look-ahead momentum.
      momentum_decay: None for optax's NAdam; a number :math:`\psi` for Dozat's (PyTorch's) momentum schedule.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.nadam(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.8526 -1.8526]

    References:
      Dozat, `Incorporating Nesterov Momentum into Adam <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016
    """
    _check_lr(learning_rate)
    if momentum_decay is None:
        scaling = tr.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)
    else:
        scaling = tr.scale_by_nadam(b1, b2, eps, eps_root, momentum_decay, mu_dtype)
    return chain(scaling, tr.scale_by_learning_rate(learning_rate))


def nadamw(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = True,
    momentum_decay: jax.typing.ArrayLike | None = None,
) -> GradientTransformationExtraArgs:
    r"""NAdamW: `nadam` plus decoupled weight decay, as `optax.nadamw`.

    With `momentum_decay` set it is `torch.optim.NAdam(..., weight_decay=wd,
    decoupled_weight_decay=True)`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      eps: stabilizer added to the root of the second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      mu_dtype: dtype of the first moment (default: the parameters').
      weight_decay: decoupled weight-decay coefficient (>= 0), or a schedule.
      mask: a pytree of booleans like the parameters (or a function `params -> mask`) selecting the decayed leaves.
      nesterov: use Nesterov's look-ahead momentum.
      momentum_decay: None for optax's NAdam; a number :math:`\psi` for Dozat's (PyTorch's) momentum schedule.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.nadamw(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.8526 -1.8526]

    References:
      Dozat, `Incorporating Nesterov Momentum into Adam <https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ>`_, 2016
    """
    _check_lr(learning_rate)
    if momentum_decay is None:
        scaling = tr.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)
    else:
        scaling = tr.scale_by_nadam(b1, b2, eps, eps_root, momentum_decay, mu_dtype)
    return chain(
        scaling,
        tr.add_decayed_weights(weight_decay, mask),
        tr.scale_by_learning_rate(learning_rate),
    )


def adamax(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
) -> GradientTransformationExtraArgs:
    r"""AdaMax (Kingma & Ba, 2015): :math:`x_{t+1} = x_t - \eta_t\, m_t / ((1-\beta_1^t)\, n_t)`.

    :math:`n_t = \max(\beta_2 n_{t-1}, |g_t| + \epsilon)`. Same as `optax.adamax` and `torch.optim.Adamax`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the infinity norm n_t, in [0, 1).
      eps: added to |g_t| inside the maximum (> 0).

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.adamax(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9 -1.9]

    References:
      Kingma & Ba, `Adam: A Method for Stochastic Optimization <https://arxiv.org/abs/1412.6980>`_, 2015
    """
    _check_lr(learning_rate)
    return chain(tr.scale_by_adamax(b1, b2, eps), tr.scale_by_learning_rate(learning_rate))


def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Any = None,
) -> GradientTransformationExtraArgs:
    """AdaMax plus decoupled weight decay, as `optax.adamaxw`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the infinity norm n_t, in [0, 1).
      eps: added to |g_t| inside the maximum (> 0).
      weight_decay: decoupled weight-decay coefficient (>= 0), or a schedule.
      mask: a pytree of booleans like the parameters (or a function `params -> mask`) selecting the decayed leaves.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.adamaxw(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9 -1.9]

    References:
      Loshchilov & Hutter, `Decoupled Weight Decay Regularization <https://arxiv.org/abs/1711.05101>`_, 2019
    """
    _check_lr(learning_rate)
    return chain(
        tr.scale_by_adamax(b1, b2, eps),
        tr.add_decayed_weights(weight_decay, mask),
        tr.scale_by_learning_rate(learning_rate),
    )


def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: jax.typing.DTypeLike | None = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    max_before_bias_correction: bool = False,
) -> GradientTransformationExtraArgs:
    r"""AMSGrad (Reddi, Kale & Kumar, 2018): Adam with a running maximum of the second moment.

    Default: optax's (maximum of the bias-corrected :math:`\hat v_t`).
    `max_before_bias_correction=True` takes the maximum of the raw :math:`v_t` and
    bias-corrects afterwards: `torch.optim.Adam(amsgrad=True)` exactly.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      eps: stabilizer added to the root of the second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      mu_dtype: dtype of the first moment (default: the parameters').
      bias_correction_mu: bias-correct the first moment.
      bias_correction_nu: bias-correct the second moment.
      max_before_bias_correction: take the running maximum of the raw second moment (PyTorch's `amsgrad=True`).

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.amsgrad(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9 -1.9]

    References:
      Reddi, Kale & Kumar, `On the Convergence of Adam and Beyond <https://openreview.net/forum?id=ryQu7f-RZ>`_, 2018
    """
    _check_lr(learning_rate)
    return chain(
        tr.scale_by_amsgrad(
            b1,
            b2,
            eps,
            eps_root,
            mu_dtype,
            bias_correction_mu,
            bias_correction_nu,
            max_before_bias_correction=max_before_bias_correction,
        ),
        tr.scale_by_learning_rate(learning_rate),
    )


def radam(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    eps_root: jax.typing.ArrayLike = 0.0,
    threshold: jax.typing.ArrayLike = 5.0,
    *,
    nesterov: bool = False,
    eps_before_bias_correction: bool = False,
) -> GradientTransformationExtraArgs:
    r"""Rectified Adam (Liu et al., 2020); see `scale_by_radam`.

    Default: optax's. `eps_before_bias_correction=True` adds eps to the raw
    :math:`\sqrt{v_t}` before dividing by :math:`\sqrt{1-\beta_2^t}`:
    `torch.optim.RAdam(lr, betas, eps)` exactly (threshold 5).

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      eps: stabilizer added to the root of the second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      threshold: variance-tractability threshold on :math:`\rho_t` (>= 4; optax and PyTorch use 5).
      nesterov: use Nesterov's look-ahead momentum.
      eps_before_bias_correction: add eps to the raw root before the bias correction (PyTorch's RAdam).

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.radam(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.79999995 -1.5999999 ]

    References:
      Liu et al., `On the Variance of the Adaptive Learning Rate and Beyond <https://arxiv.org/abs/1908.03265>`_, 2020
    """
    _check_lr(learning_rate)
    return chain(
        tr.scale_by_radam(
            b1,
            b2,
            eps,
            eps_root,
            threshold,
            nesterov=nesterov,
            eps_before_bias_correction=eps_before_bias_correction,
        ),
        tr.scale_by_learning_rate(learning_rate),
    )


def adabelief(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-16,
    eps_root: jax.typing.ArrayLike = 1e-16,
    *,
    nesterov: bool = False,
) -> GradientTransformationExtraArgs:
    r"""AdaBelief (Zhuang et al., 2020): Adam scaled by the variance of the gradient's surprise.

    :math:`x_{t+1} = x_t - \eta_t \hat m_t/(\sqrt{\hat s_t} + \epsilon)`, see `scale_by_belief`.
    As `optax.adabelief`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the EMA of the squared surprise (g_t - m_t)^2, in [0, 1).
      eps: added to the root of the surprise's second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      nesterov: use Nesterov's look-ahead momentum.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.adabelief(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.8889    -1.8888999]

    References:
      Zhuang et al., `AdaBelief Optimizer <https://arxiv.org/abs/2010.07468>`_, 2020
    """
    _check_lr(learning_rate)
    return chain(tr.scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov), tr.scale_by_learning_rate(learning_rate))


def lamb(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-6,
    eps_root: jax.typing.ArrayLike = 0.0,
    weight_decay: ScalarOrSchedule = 0.0,
    mask: Any = None,
) -> GradientTransformationExtraArgs:
    r"""LAMB (You et al., 2020): AdamW's direction rescaled per layer by the trust ratio.

    .. math:: r_t = \frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon} + \lambda x_t, \quad
              x_{t+1} = x_t - \eta_t \frac{\|x_t\|}{\|r_t\|} r_t.

    As `optax.lamb`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      eps: stabilizer added to the root of the second moment.
      eps_root: stabilizer added inside the root (keeps gradients through the optimizer finite).
      weight_decay: decoupled weight-decay coefficient (>= 0), or a schedule.
      mask: a pytree of booleans like the parameters (or a function `params -> mask`) selecting the decayed leaves.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.lamb(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.8419 -1.8419]

    References:
      You et al., `Large Batch Optimization for Deep Learning: Training BERT in 76 minutes
        <https://arxiv.org/abs/1904.00962>`_, 2020
    """
    _check_lr(learning_rate)
    return chain(
        tr.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
        tr.add_decayed_weights(weight_decay, mask),
        tr.scale_by_trust_ratio(),
        tr.scale_by_learning_rate(learning_rate),
    )


def yogi(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-3,
) -> GradientTransformationExtraArgs:
    r"""Yogi (Zaheer et al., 2018): Adam with an additive, sign-controlled second moment.

    See `scale_by_yogi` (moments start at 1e-6). As `optax.yogi`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      eps: stabilizer added to the root of the second moment.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.yogi(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9001 -1.9   ]

    References:
      Zaheer et al., `Adaptive Methods for Nonconvex Optimization
        <https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization>`_, 2018
    """
    _check_lr(learning_rate)
    return chain(tr.scale_by_yogi(b1=b1, b2=b2, eps=eps), tr.scale_by_learning_rate(learning_rate))


def lion(
    learning_rate: ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.99,
    mu_dtype: jax.typing.DTypeLike | None = None,
    weight_decay: ScalarOrSchedule = 1e-3,
    mask: Any = None,
) -> GradientTransformationExtraArgs:
    r"""Lion (Chen et al., 2023).

    .. math:: x_{t+1} = x_t - \eta_t\big(\mathrm{sign}(\beta_1 m_{t-1} + (1-\beta_1) g_t) + \lambda x_t\big).

    See `scale_by_lion`. As `optax.lion` (decoupled weight decay, default 1e-3).

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: weight of the momentum inside the sign, in [0, 1].
      b2: decay of the momentum m_t, in [0, 1].
      mu_dtype: dtype of the first moment (default: the parameters').
      weight_decay: decoupled weight-decay coefficient (>= 0), or a schedule.
      mask: a pytree of booleans like the parameters (or a function `params -> mask`) selecting the decayed leaves.

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.lion(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.89989996 -1.8998    ]

    References:
      Chen et al., `Symbolic Discovery of Optimization Algorithms <https://arxiv.org/abs/2302.06675>`_, 2023
    """
    _check_lr(learning_rate)
    return chain(
        tr.scale_by_lion(b1=b1, b2=b2, mu_dtype=mu_dtype),
        tr.add_decayed_weights(weight_decay, mask),
        tr.scale_by_learning_rate(learning_rate),
    )


def adabound(
    learning_rate: ScalarOrSchedule = 1e-3,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    final_lr: jax.typing.ArrayLike = 0.1,
    gamma: jax.typing.ArrayLike = 1e-3,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    *,
    amsbound: bool = False,
) -> GradientTransformationExtraArgs:
    r"""AdaBound / AMSBound (Luo, Xiong, Liu & Sun, ICLR 2019), the authors' reference semantics.

    Adam whose per-element step size is clipped into bounds that both converge
    to `final_lr`, turning Adam into SGD over training (see `scale_by_adabound`):

    .. math::
        x_{t+1} = x_t - \mathrm{clip}\Big(
        \frac{\alpha_t\sqrt{1-\beta_2^t}}{(1-\beta_1^t)(\sqrt{v_t}+\epsilon)},
        \ f_t\big(1-\tfrac{1}{\gamma t+1}\big),\ f_t\big(1+\tfrac{1}{\gamma t}\big)\Big)\, m_t,
        \quad f_t = \text{final\_lr}\,\frac{\alpha_t}{\alpha_0}.

    Defaults and keywords are the authors' (`lr`, `betas`, `final_lr`, `gamma`,
    `eps`, `weight_decay`, `amsbound`), with betas split into b1, b2 as
    elsewhere here. `weight_decay` is the coupled L2 term of their code. A
    learning-rate schedule is evaluated at step 0 for :math:`\alpha_0`.

    Args:
      learning_rate: the step size: a float, a JAX scalar (traced values allowed) or a schedule `step -> value`.
      b1: decay of the first moment (EMA of gradients), in [0, 1).
      b2: decay of the second moment (EMA of squared gradients), in [0, 1).
      final_lr: the SGD learning rate both bounds converge to (> 0).
      gamma: annealing exponent of the noise variance (>= 0).
      eps: added to sqrt(v_t), before the bias correction.
      weight_decay: decoupled weight-decay coefficient (>= 0), or a schedule.
      amsbound: use the running maximum of the second moment (AMSBound).

    Returns:
      An optax `GradientTransformationExtraArgs`: `init(params)` and
      `update(updates, state, params=None, **extra_args)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxopt_lab import optim
      >>> opt = optim.adabound(0.1)
      >>> params = jnp.array([1.0, -2.0], jnp.float32)
      >>> state = opt.init(params)
      >>> grads = 2 * params  # gradient of sum(params ** 2)
      >>> updates, state = opt.update(grads, state, params)
      >>> print(optim.apply_updates(params, updates).round(4))
      [ 0.9 -1.9]

    References:
      Luo, Xiong, Liu & Sun, `Adaptive Gradient Methods with Dynamic Bound of Learning Rate
        <https://arxiv.org/abs/1902.09843>`_, 2019
    """
    _check_lr(learning_rate)
    base = learning_rate(jnp.zeros([], jnp.int32)) if callable(learning_rate) else learning_rate
    return chain(
        tr.add_l2_penalty_grad(weight_decay),
        tr.scale_by_adabound(b1, b2, eps, final_lr, gamma, base, amsbound=amsbound),
        tr.scale_by_learning_rate(learning_rate),
    )

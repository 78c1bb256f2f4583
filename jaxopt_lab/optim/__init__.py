"""Optimizers as optax-compatible gradient transformations, written in this project.

    from jaxopt_lab import optim
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-3, weight_decay=1e-4))
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = optim.apply_updates(params, updates)

Primitives live in `transforms`, the named optimizers in `aliases`, wrappers
(lookahead, apply_if_finite, reduce_on_plateau) in `wrappers`, hypergradient
descent (`hd_sgd`, `hd_adam`) in `hypergradient`, and schedules in
`jaxopt_lab.schedules` (re-exported here).
"""

from jaxopt_lab import schedules as _schedules
from jaxopt_lab.optim import aliases as _aliases
from jaxopt_lab.optim import base as _base
from jaxopt_lab.optim import hypergradient as _hypergradient
from jaxopt_lab.optim import transforms as _transforms
from jaxopt_lab.optim import wrappers as _wrappers
from jaxopt_lab.optim.aliases import *  # noqa: F403
from jaxopt_lab.optim.base import *  # noqa: F403
from jaxopt_lab.optim.hypergradient import *  # noqa: F403
from jaxopt_lab.optim.transforms import *  # noqa: F403
from jaxopt_lab.optim.wrappers import *  # noqa: F403
from jaxopt_lab.schedules import *  # noqa: F403

__all__ = sorted(
    {*_base.__all__, *_transforms.__all__, *_aliases.__all__, *_wrappers.__all__, *_schedules.__all__,
     *_hypergradient.__all__}
)

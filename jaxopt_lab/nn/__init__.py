"""Pure-function models: initializers, activations, MLPs and optimizer test functions.

Submodules: `init` (initializers by name), `activations` (activations by name
and the initializer each wants), `mlp` (`init`/`apply` of multi-layer
perceptrons with dropout, batch and layer norm; linear/logistic regression and
the initialization-and-quartic lecture's sigmoid network), `testfns` (quartic, Rosenbrock, Beale, ravine).
"""

from jaxopt_lab.nn import activations, init, mlp, testfns
from jaxopt_lab.nn.activations import ACTIVATIONS, get_activation, recommended_init
from jaxopt_lab.nn.init import INITIALIZERS, get_initializer
from jaxopt_lab.nn.mlp import NORMS, Model, make_mlp, num_params
from jaxopt_lab.nn.testfns import TEST_FUNCTIONS, TestFunction, get_test_function

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "NORMS",
    "TEST_FUNCTIONS",
    "Model",
    "TestFunction",
    "activations",
    "get_activation",
    "get_initializer",
    "get_test_function",
    "init",
    "make_mlp",
    "mlp",
    "num_params",
    "recommended_init",
    "testfns",
]

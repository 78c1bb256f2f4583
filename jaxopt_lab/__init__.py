"""jaxopt_lab: a JAX toolkit for studying how neural networks are trained and optimized."""

__version__ = "0.1.0"

"""The Examples in the optimizers' docstrings run, print what they say, and every public optimizer has one."""

import doctest
import inspect

import pytest

from jaxopt_lab.optim import aliases, hypergradient, transforms, wrappers

MODULES = [aliases, transforms, wrappers, hypergradient]
#: Public names without a runnable example: helpers, not optimizers or transforms.
NO_EXAMPLE = {"check_choice"}


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_pass(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, report=True, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest lines failed in {module.__name__}"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_public_function_documents_args_returns_example_and_references(module):
    missing = []
    for name in module.__all__:
        fn = getattr(module, name)
        if not inspect.isfunction(fn) or name in NO_EXAMPLE:
            continue
        doc = fn.__doc__ or ""
        sections = ("Returns:", "Example:", "References:", ">>> ")
        lacking = [s for s in sections if s not in doc]
        if inspect.signature(fn).parameters and "Args:" not in doc:
            lacking.append("Args:")
        if lacking:
            missing.append(f"{name}: {lacking}")
    assert not missing, missing

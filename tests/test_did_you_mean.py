"""`_checks.did_you_mean`: the hint below the config layer writes what `config.closest` writes."""

import pytest

from jaxopt_lab import config
from jaxopt_lab._checks import did_you_mean
from jaxopt_lab.data.augment import AUGMENTATIONS, MODES


@pytest.mark.parametrize("name, choices, want", [
    ("rotate", list(AUGMENTATIONS), " (did you mean 'rotation'?)"),
    ("wrapp", MODES, " (did you mean 'wrap'?)"),
    ("zzz", MODES, ""),
    (3, [1, 2, 3.5], ""),
    (120, [5, 121], " (did you mean '121'?)"),  # non-strings are compared as text
])
def test_hint_matches_config_closest(name, choices, want):
    assert did_you_mean(name, choices) == want
    assert config.closest(name, choices) == want

"""`python -m jaxopt_lab`: the same as the `jaxopt-lab` command."""

import sys

from jaxopt_lab.cli import main

sys.exit(main())

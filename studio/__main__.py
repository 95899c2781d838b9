"""`python -m studio ...`: see `studio.cli`."""

from studio.cli import run

run()

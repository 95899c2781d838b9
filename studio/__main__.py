"""`python -m studio ...`: see `studio.cli`."""

from studio.cli import main

raise SystemExit(main())

"""`python -m cascc.cli` runs the `cascc` command."""

from .main import main

main()

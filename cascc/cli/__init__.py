"""The `cascc` command: one module per command group, errors translated once in `main.CasccGroup`."""

from .main import main

__all__ = ["main"]

"""Experiments that score cascc's methods rather than compile models (planted tickets)."""

"""Helpers shared by test modules (tests/ is on sys.path via pytest's `pythonpath`)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).parent
MODELS = TESTS / "models.py"
EXAMPLES = TESTS.parent / "examples"


def model_ref(factory: str) -> str:
    """`tests/models.py:factory` as a model reference."""
    return f"{MODELS}:{factory}"

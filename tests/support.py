"""Helpers shared by test modules (tests/ is on sys.path via pytest's `pythonpath`)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).parent
MODELS = TESTS / "models.py"
EXAMPLES = TESTS.parent / "examples"


def model_ref(factory: str) -> str:
    """`tests/models.py:factory` as a model reference."""
    return f"{MODELS}:{factory}"


def invoke(*args) -> tuple[int, str]:
    """Run the cascc CLI in-process; returns (exit code, output). click ≥ 8.2 mixes stderr into output."""
    from click.testing import CliRunner

    from cascc.cli.main import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def assert_clean_error(code: int, text: str, expected_code: int, *fragments: str) -> None:
    """One `error:` paragraph with the expected exit code, each fragment present, no traceback."""
    assert code == expected_code, text
    assert "Traceback" not in text
    assert text.count("error:") == 1
    for fragment in fragments:
        assert fragment.lower() in text.lower(), (fragment, text)

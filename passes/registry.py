"""The pass registry and the one runner that applies passes and records them in the program's history."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cascc.errors import CasccError, PassFailed, PassWarning  # noqa: F401  (re-exported)
from cascc.ir import PassRecord, Program, verify
from cascc.registry import Registry

Pass = Callable[..., Program]
PASSES: Registry[Pass] = Registry("pass")
register = PASSES.register

Step = tuple[str, Mapping[str, Any]]


def choices(prefix: str) -> dict[str, str]:
    """The passes named `prefix.*` by the name a user types, in registration order
    (`prune.random_regular` → `random-regular`): the CLI's choices for a family of passes."""
    start = prefix + "."
    return {name[len(start) :].replace("_", "-"): name for name in PASSES if name.startswith(start)}


def run(program: Program, steps: Sequence[Step], *, check: bool = True) -> Program:
    """Apply passes in order; each result is verified and recorded in `program.history`.

    A user error (CasccError) propagates unchanged; any other exception becomes PassFailed naming the pass
    and the passes that ran before it.
    """
    done: list[str] = []
    for name, options in steps:
        if name not in PASSES:
            raise CasccError(None, f"unknown pass {name!r}", f"choose one of {', '.join(sorted(PASSES))}")
        try:
            result = PASSES[name](program, **options)
            if not isinstance(result, Program):
                raise CasccError(
                    None,
                    f"pass {name!r} is an analysis and returns a report",
                    "call it directly, not in a pipeline",
                )
            if check:
                verify(result)
        except CasccError:
            raise
        except Exception as exc:
            before = ", ".join(done) or "nothing"
            raise PassFailed(
                program.source,
                f"pass {name!r} failed after {before}: {type(exc).__name__}: {exc}",
                "rerun with --debug for the traceback and report it",
            ) from exc
        program = dataclasses.replace(result, history=(*program.history, PassRecord(name, dict(options))))
        done.append(name)
    return program

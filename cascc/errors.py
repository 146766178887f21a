"""Domain errors. The library raises them; the CLI translates them once into one paragraph and an exit code."""

from __future__ import annotations

from pathlib import Path

# Exit codes, documented in `cascc --help`.
EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 101


class CasccError(Exception):
    """An error the user can act on: where it happened, what is wrong, what to do."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, where: str | Path | None, problem: str, fix: str = ""):
        self.where = str(where) if where is not None else None
        self.problem = problem.rstrip(". ")
        self.fix = fix.rstrip(". ")
        super().__init__(str(self))

    def __reduce__(self):  # picklable across process pools (the default passes only str(self))
        return (self.__class__, (self.where, self.problem, self.fix))

    def __str__(self) -> str:
        head = f"{self.where}: {self.problem}." if self.where else f"{self.problem}."
        return f"{head} {self.fix[:1].upper()}{self.fix[1:]}." if self.fix else head


class ModelLoadError(CasccError):
    """The model file, factory or export is unusable."""


class ArtifactError(CasccError):
    """An artifact directory is missing, incomplete or tampered with."""


class OptionError(CasccError):
    """An option value is out of range or inconsistent with the model."""


class PassFailed(CasccError):
    """A pass raised an unexpected exception; names the pass and the passes before it."""

    exit_code = EXIT_INTERNAL


class LoweringError(CasccError):
    """TVM lowering or codegen failed, or left a kernel unscheduled."""

    exit_code = EXIT_INTERNAL


class PassWarning(UserWarning):
    """A pass did what it could and says what it left undone; the CLI prints it as a warning line."""


def first_paragraph(exc: BaseException, limit: int = 600) -> str:
    """The first paragraph of an exception's message, flattened to one line and cut to `limit` characters."""
    text = str(exc).strip() or type(exc).__name__
    para = text.split("\n\n", 1)[0]
    flat = " ".join(line.strip() for line in para.splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

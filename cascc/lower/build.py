"""Code generation in a child process: a native crash inside TVM or LLVM (an abort, a segfault) becomes a
LoweringError naming the kernel it happened in, instead of killing cascc with no message.

The child is forked after scheduling, so it inherits the scheduled module without serializing its
constants. It runs `tvm.compile`, links the library into a scratch directory and reports the device code
it carries; the parent keeps the library file. When the child dies of a signal, the parent builds the
module's kernels in further children, halving the set each time, until it finds the kernel that crashes on
its own, and names it with the layer it was generated for and the last line the crash printed.
"""

from __future__ import annotations

import os
import pickle
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascc.errors import LoweringError, first_paragraph
from cascc.targets import Target

LIBRARY = "model.so"


@dataclass(frozen=True)
class Crash:
    """A child that died of a signal: the signal's name and the last line it wrote to stderr."""

    signal: str
    last_line: str


def in_child(work: Callable[[], Any], scratch: Path) -> Any | Crash:
    """Run `work` in a forked child and return its (picklable) result; an exception it raises is raised
    here, and a death by signal returns a Crash. Without fork (not POSIX) `work` runs in this process."""
    if not hasattr(os, "fork"):
        return work()
    result, errlog = scratch / "result.pickle", scratch / "stderr.log"
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's stack
        code = 1
        try:
            fd = os.open(errlog, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 2)
            try:
                payload = (True, work())
            except BaseException as exc:  # reported to the parent, which raises it
                payload = (False, exc if _picklable(exc) else RuntimeError(first_paragraph(exc)))
            result.write_bytes(pickle.dumps(payload))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return Crash(signal.Signals(os.WTERMSIG(status)).name, _last_line(errlog))
    if not result.exists():
        return Crash(f"exit {os.waitstatus_to_exitcode(status)}", _last_line(errlog))
    ok, value = pickle.loads(result.read_bytes())
    result.unlink()
    if not ok:
        raise value
    return value


def build(mod, tvm_target, target: Target, relax_pipeline, source: str | None) -> tuple[Path, list, Any]:
    """Compile the scheduled module and link it: (library path, device code, scratch directory holding
    the library — keep it alive as long as the path is used)."""
    import tvm

    from .export import device_code, export_library

    scratch = tempfile.TemporaryDirectory(prefix="cascc-build-")
    path = Path(scratch.name) / LIBRARY

    def work() -> list:
        try:
            executable = tvm.compile(mod, target=tvm_target, relax_pipeline=relax_pipeline)
        except Exception as exc:
            raise LoweringError(
                source,
                f"TVM compilation for {target.name} failed: {first_paragraph(exc)}",
                "rerun with --debug and report it",
            ) from None
        export_library(executable, target, path)
        return device_code(executable)

    outcome = in_child(work, Path(scratch.name))
    if isinstance(outcome, Crash):
        raise _crash_error(mod, tvm_target, outcome, source, Path(scratch.name))
    return path, outcome, scratch


def _crash_error(mod, tvm_target, crash: Crash, source: str | None, scratch: Path) -> LoweringError:
    """Name the kernel that crashes on its own (bisecting the module's kernels in children)."""
    culprit = find_crashing_kernel(mod, tvm_target, scratch)
    where = (
        f"while building kernel {culprit}"
        if culprit
        else "while building the module (no kernel crashes alone)"
    )
    said = f"; it printed: {crash.last_line}" if crash.last_line else ""
    return LoweringError(
        source,
        f"TVM/LLVM crashed ({crash.signal}) {where}{said}. No artifact was written",
        "this is a cascc or TVM bug: rerun with --debug and report it with the model",
    )


def find_crashing_kernel(mod, tvm_target, scratch: Path) -> str | None:
    """The name of a PrimFunc whose build crashes by itself (with the layer it came from), or None."""
    import tvm
    from tvm import tirx

    kernels = sorted(
        (gv.name_hint, func) for gv, func in mod.functions_items() if isinstance(func, tirx.PrimFunc)
    )

    def crashes(group) -> bool:
        sub = tvm.IRModule({name: func.with_attr("global_symbol", name) for name, func in group})
        try:
            return isinstance(
                in_child(lambda: tvm.tirx.build(sub, target=tvm_target) and None, scratch), Crash
            )
        except Exception:  # an ordinary error is not the crash we look for
            return False

    group = kernels
    if not group or not crashes(group):
        return None
    while len(group) > 1:
        half = group[: len(group) // 2]
        group = half if crashes(half) else group[len(group) // 2 :]
    return _describe(group[0][0])


def _describe(name: str) -> str:
    """A kernel name and, for cascc's kernels (named cascc_<layer>_...), the layer."""
    if name.startswith("cascc_"):
        return f"`{name}` (cascc's kernel for the layer it is named after)"
    return f"`{name}` (TVM's kernel for the fused ops it is named after)"


def _last_line(path: Path) -> str:
    """What the crash said: its last line naming an error (LLVM ERROR, Check failed, …), else its last line
    that is not part of a backtrace."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    said = [ln for ln in lines if any(w in ln for w in ("ERROR", "error", "Error", "Check failed", "Fatal"))]
    said = said or [
        ln for ln in lines if not ln.startswith(("File ", "at ", "#", "Stack trace", "Fatal Python"))
    ]
    return said[-1][:300] if said else ""


def _picklable(exc: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return True


__all__ = ["Crash", "build", "find_crashing_kernel", "in_child"]

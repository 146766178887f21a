"""Reading a `.pt2` without ever unpickling: a `.pt2` is untrusted input.

torch.export.load unpickles in four places: weights and constants stored with `use_pickle`, custom-object
constants (`pickle.loads`), legacy `.pt` payloads, and the sample inputs, where it retries a failed
`torch.load(weights_only=True)` with `weights_only=False`. While `without_pickle()` is active every
`torch.load` is forced to `weights_only=True` (torch's restricted unpickler: tensors and plain containers
only), a request for full unpickling raises `PickleRefused` instead, and the archive loader's own
`pickle` is replaced by one that refuses. sympy.sympify, which evaluates the symbolic-shape strings of
the graph, only sees arithmetic on the archive's own symbols. torch's log lines (it logs a traceback on some failures) are
silenced too; the caller reports one paragraph.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import operator
import re
import types
import warnings
from collections.abc import Iterator

import torch


class PickleRefused(Exception):
    """The archive needs full unpickling (arbitrary code) for one of its entries."""


def _refuse(*_args, **_kwargs):
    raise PickleRefused("an entry is a pickle of arbitrary Python objects")


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.causes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            self.causes.append(
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
            )


@contextlib.contextmanager
def without_pickle() -> Iterator[list[str]]:
    """Within the block, torch.load never runs a full unpickler and the pt2 loader cannot call pickle;
    yields the causes torch logged (instead of printing them with a traceback)."""
    real_load = torch.load

    def weights_only_load(f, *args, weights_only=None, **kwargs):
        if weights_only is False:
            raise PickleRefused("torch asked to load an entry with weights_only=False")
        return real_load(f, *args, weights_only=True, **kwargs)

    package = importlib.import_module("torch.export.pt2_archive._package")
    serde = importlib.import_module("torch._export.serde.serialize")
    real_pickle, real_sympy = package.pickle, serde.sympy
    collect = _Collect()
    # torch configures handlers on many of its loggers (fake_tensor logs a traceback when a size is absurd)
    names = ["torch"] + [n for n in logging.root.manager.loggerDict if n.startswith("torch.")]
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg, lg.handlers, lg.propagate, lg.level) for lg in loggers]
    torch.load = weights_only_load
    package.pickle = types.SimpleNamespace(loads=_refuse, load=_refuse, Unpickler=_refuse)
    serde.sympy = _CheckedSympy(real_sympy)
    for lg in loggers:
        lg.handlers, lg.propagate = [collect], False
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield collect.causes
    finally:
        torch.load = real_load
        package.pickle, serde.sympy = real_pickle, real_sympy
        for lg, handlers, propagate, level in saved:
            lg.handlers, lg.propagate = handlers, propagate
            lg.setLevel(level)


# A symbolic-shape expression may name the archive's own symbols and sympy's functions, with numbers and
# arithmetic between them: sympy.sympify evaluates its string, so nothing else may reach it.
_SYMPY_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z_0-9]*)|\d+(?:\.\d+)?(?:e-?\d+)?|\*\*|//|[-+*/%(),<>=!])"
)


def _checked_sympify(real_sympify):
    def sympify(expr, *args, locals=None, **kwargs):
        if isinstance(expr, str):
            pos, names = 0, set(locals or ())
            while pos < len(expr.rstrip()):
                token = _SYMPY_TOKEN.match(expr, pos)
                if token is None or (token["name"] and token["name"] not in names):
                    raise PickleRefused(f"a symbolic shape expression holds code: {expr[:80]!r}")
                pos = token.end()
        return real_sympify(expr, *args, locals=locals, **kwargs)

    return sympify


class _CheckedSympy(types.ModuleType):
    """sympy, except that sympify checks its string first."""

    def __init__(self, real: types.ModuleType):
        super().__init__("sympy")
        self._real = real
        self.sympify = _checked_sympify(real.sympify)

    def __getattr__(self, name: str):
        return getattr(self._real, name)


# Node targets a deserialized graph may call: registered operators, and operator/math builtins (index and
# symbolic-size arithmetic). A Python callable reached through torch's namespace (torch.load, the os
# module torch imports) is refused before any node runs.
def foreign_targets(graph) -> list[str]:
    """The call_function targets of `graph` that are neither registered operators nor operator/math
    builtins."""
    found = []
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        target = node.target
        if isinstance(target, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
            continue
        name = getattr(target, "__name__", None)
        if name and any(getattr(module, name, None) is target for module in (operator, math)):
            continue
        found.append(str(getattr(target, "__qualname__", target)))
    return sorted(set(found))

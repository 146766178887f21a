"""CI gates on an artifact: size, latency (absolute or against a peer), accuracy and per-class accuracy drop.

Each budget is one `Gate` with its measured value, limit and verdict; `cascc check` exits 1 if any fails.
Budgets come from options or from the `[check]` table of a `cascc.toml`.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from ..errors import OptionError, first_paragraph
from . import artifact as artifacts

# the [check] keys a budget file may set, with the type and range each must have
BUDGET_TYPES = {
    "max_size": (str, int, float),
    "max_latency": (str, int, float),
    "max_latency_ratio": (int, float),
    "baseline": (str,),
    "min_accuracy": (int, float),
    "rpc": (str,),
    "key": (str,),
    "max_class_drop": (int, float),
    "data": (str,),
    "runs": (int,),
}
BUDGET_KEYS = tuple(BUDGET_TYPES)
SIZE_UNITS = {"b": 1, "kb": 1e3, "kib": 1024, "mb": 1e6, "mib": 1024**2, "gb": 1e9, "gib": 1024**3}
TIME_UNITS = {"s": 1e3, "ms": 1.0, "us": 1e-3, "µs": 1e-3}


@dataclass(frozen=True)
class Gate:
    """One budget: what was measured, the limit, and whether it holds."""

    name: str
    measured: float
    limit: float
    unit: str
    passed: bool
    detail: str = ""

    def line(self) -> str:
        relation = "≤" if self.name != "min_accuracy" else "≥"
        verdict = "pass" if self.passed else "FAIL"
        return f"{verdict} {self.name}: {self.measured:.4g} {self.unit} (limit {relation} {self.limit:.4g} {self.unit})"


NUMBER = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"


def _budget_number(value: Any, what: str, example: str) -> float:
    """A budget given as a plain number: finite and ≥ 0 (a TOML `true` or `inf` is not a budget)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise OptionError(
            None, f"{what} {value!r} is not a finite, non-negative number", f"write e.g. {example}"
        )
    return float(value)


def parse_size(text: str | float) -> float:
    """'2MB', '512KiB', 1000 → bytes."""
    if not isinstance(text, str):
        return _budget_number(text, "size", "2MB, 512KiB or 1000000")
    found = re.fullmatch(rf"\s*{NUMBER}\s*([a-zA-Z]*)\s*", text)
    if not found or found[2].lower() not in SIZE_UNITS | {"": 1}:
        raise OptionError(
            None, f"size {text!r} is not a number with a unit", "write e.g. 2MB, 512KiB or 1000000"
        )
    return float(found[1]) * SIZE_UNITS.get(found[2].lower(), 1)


def parse_latency(text: str | float) -> float:
    """'5ms', '250us', '0.01s', 5 → milliseconds."""
    if not isinstance(text, str):
        return _budget_number(text, "latency", "5ms, 250us or 0.01s")
    found = re.fullmatch(rf"\s*{NUMBER}\s*(s|ms|us|µs)?\s*", text)
    if not found:
        raise OptionError(None, f"latency {text!r} is not a time", "write e.g. 5ms, 250us or 0.01s")
    return float(found[1]) * TIME_UNITS[found[2] or "ms"]


def _check_budget_values(path: Path, table: Mapping[str, Any]) -> None:
    def bad(key: str, why: str) -> OptionError:
        return OptionError(path, f"[check] {key} = {table[key]!r} {why}", "fix the value in the budget file")

    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, BUDGET_TYPES[key]):
            names = " or ".join(t.__name__ for t in BUDGET_TYPES[key])
            raise bad(key, f"is a {type(value).__name__}, expected {names}")
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(key, "is not finite")
    for key in ("min_accuracy", "max_class_drop"):
        if key in table and not 0 <= table[key] <= 1:
            raise bad(key, "is outside [0, 1]")
    if "max_latency_ratio" in table and table["max_latency_ratio"] <= 0:
        raise bad("max_latency_ratio", "is not positive")
    if "runs" in table and not 3 <= table["runs"] <= 10_000:
        raise bad("runs", "is outside 3–10000 (as --runs)")
    if "baseline" in table:
        from .bench import BASELINES

        if table["baseline"] not in BASELINES:
            raise bad("baseline", f"is not one of {', '.join(BASELINES)}")
    for key in ("max_size", "max_latency"):
        if key in table:
            try:
                (parse_size if key == "max_size" else parse_latency)(table[key])
            except OptionError as exc:
                raise bad(key, f"is not valid ({exc.problem})") from exc


def load_budgets(path: Path) -> dict[str, Any]:
    """The `[check]` table of a cascc.toml, every key and value checked."""
    try:
        table = tomllib.loads(Path(path).read_bytes().decode("utf-8")).get("check", {})
    except (OSError, ValueError, RecursionError) as exc:  # TOMLDecodeError, UnicodeDecodeError
        raise OptionError(
            path,
            f"cannot read the budget file ({first_paragraph(exc, 200)})",
            "fix the TOML or pass budgets as options",
        ) from exc
    if not isinstance(table, dict):
        raise OptionError(path, "[check] is not a table", "write budgets under a [check] table")
    unknown = sorted(set(table) - set(BUDGET_KEYS))
    if unknown:
        raise OptionError(
            path, f"unknown key(s) in [check]: {', '.join(unknown)}", f"use {', '.join(BUDGET_KEYS)}"
        )
    _check_budget_values(path, table)
    return table


def check(
    path: str | Path,
    budgets: Mapping[str, Any],
    *,
    threads: int | None = None,
    model: str | None = None,
    expect_digest: str | None = None,
) -> list[Gate]:
    """Measure the artifact at `path` against every budget given (keys as in BUDGET_KEYS). `model` is the
    artifact's source model, which the torch baseline and `max_class_drop` need (never read from the
    manifest)."""
    art = artifacts.open_artifact(Path(path), expect_digest=expect_digest)
    wanted = {k: v for k, v in budgets.items() if v is not None}
    gates_asked = {"max_size", "max_latency", "max_latency_ratio", "min_accuracy", "max_class_drop"} & set(
        wanted
    )
    if not gates_asked:
        raise OptionError(
            None, "no budget to check", "pass e.g. --max-size 2MB or a cascc.toml with a [check] table"
        )
    if ({"min_accuracy", "max_class_drop"} & gates_asked) and not wanted.get("data"):
        raise OptionError(None, "accuracy budgets need data", "pass --data digits (or npz:PATH, csv:PATH)")
    gates = []
    if "max_size" in wanted:
        size = sum(f["bytes"] for f in art.manifest["files"].values())
        limit = parse_size(wanted["max_size"])
        gates.append(Gate("max_size", size / 1e6, limit / 1e6, "MB", size <= limit, f"{size:,} bytes"))
    if "max_latency" in wanted or "max_latency_ratio" in wanted:
        gates += _latency_gates(path, wanted, threads, model, expect_digest)
    if "min_accuracy" in wanted or "max_class_drop" in wanted:
        gates += _accuracy_gates(art, wanted, model)
    return gates


def _latency_gates(
    path, wanted: Mapping[str, Any], threads: int | None, model: str | None, expect_digest: str | None
) -> list[Gate]:
    from .bench import bench

    baseline = wanted.get("baseline", "onnxruntime")
    ratio_asked = "max_latency_ratio" in wanted
    rounds = max(3, int(wanted.get("runs", 15)))
    result = bench(
        path,
        rounds=rounds,
        threads=threads,
        baselines=(baseline,) if ratio_asked else (),
        rpc=wanted.get("rpc"),
        key=wanted.get("key"),
        model=model,
        expect_digest=expect_digest,
    )
    median_ms = result["runners"]["cascc"]["median_us"] / 1e3
    gates = []
    if "max_latency" in wanted:
        limit = parse_latency(wanted["max_latency"])
        gates.append(
            Gate(
                "max_latency",
                median_ms,
                limit,
                "ms",
                median_ms <= limit,
                f"median of {rounds} rounds" + (f" on the {result['remote']}" if "remote" in result else ""),
            )
        )
    if ratio_asked:
        peer_ms = result["runners"][baseline]["median_us"] / 1e3
        ratio = median_ms / peer_ms
        limit = float(wanted["max_latency_ratio"])
        gates.append(
            Gate(
                "max_latency_ratio",
                ratio,
                limit,
                f"× {baseline}",
                ratio <= limit,
                f"{median_ms:.3f} ms vs {peer_ms:.3f} ms",
            )
        )
    return gates


def _accuracy_gates(art: artifacts.Artifact, wanted: Mapping[str, Any], model: str | None) -> list[Gate]:
    from ..data import load

    data = load(wanted["data"])
    predicted = _predict_artifact(art, data.x_test)
    labels = data.y_test.numpy()[: len(predicted)]
    gates = []
    accuracy = float((predicted == labels).mean())
    if "min_accuracy" in wanted:
        limit = float(wanted["min_accuracy"])
        gates.append(
            Gate("min_accuracy", accuracy, limit, "", accuracy >= limit, f"{len(labels)} test samples")
        )
    if "max_class_drop" in wanted:
        dense = _predict_dense(art, data.x_test, model)[: len(labels)]
        drops = {}
        for c in np.unique(labels):
            chosen = labels == c
            drops[int(c)] = float((dense[chosen] == c).mean() - (predicted[chosen] == c).mean())
        worst = max(drops, key=drops.get)
        limit = float(wanted["max_class_drop"])
        gates.append(
            Gate(
                "max_class_drop",
                drops[worst],
                limit,
                "",
                drops[worst] <= limit,
                f"class {worst} vs the dense model",
            )
        )
    return gates


def _batches(x, spec):
    batch = spec.shape[0]
    per_sample = int(np.prod(spec.shape[1:]))
    if x[0].numel() != per_sample:
        raise OptionError(
            None,
            f"data samples have {x[0].numel()} values but the artifact's input takes {per_sample} per sample",
            "pass data matching the compiled model",
        )
    for start in range(0, len(x) - batch + 1, batch):
        yield x[start : start + batch].reshape(spec.shape).numpy().astype(spec.dtype)


def _predict_artifact(art: artifacts.Artifact, x) -> np.ndarray:
    from .running import open_session

    session = open_session(art)
    outputs = [session.run([batch])[0] for batch in _batches(x, art.inputs[0])]
    return np.concatenate(outputs).reshape(-1, outputs[0].shape[-1]).argmax(axis=1)


def _predict_dense(art: artifacts.Artifact, x, model: str | None) -> np.ndarray:
    """The source model before any pass, in torch eager: the reference for per-class drops."""
    import torch

    from .replay import replay

    module = replay(art, model, purpose="--max-class-drop", passes=False).module()
    with torch.no_grad():
        outputs = [module(torch.from_numpy(batch)).numpy() for batch in _batches(x, art.inputs[0])]
    return np.concatenate(outputs).reshape(-1, outputs[0].shape[-1]).argmax(axis=1)


def to_json(gates: list[Gate]) -> dict[str, Any]:
    return {"passed": all(g.passed for g in gates), "checks": [asdict(g) for g in gates]}


def to_junit(gates: list[Gate], artifact: str) -> str:
    """A JUnit XML report: one testcase per budget, a <failure> for each broken one."""
    suite = ElementTree.Element(
        "testsuite", name="cascc check", tests=str(len(gates)), failures=str(sum(not g.passed for g in gates))
    )
    for gate in gates:
        case = ElementTree.SubElement(suite, "testcase", classname=f"cascc.check.{artifact}", name=gate.name)
        if not gate.passed:
            failure = ElementTree.SubElement(case, "failure", message=gate.line())
            failure.text = gate.detail
        ElementTree.SubElement(case, "system-out").text = gate.line()
    return ElementTree.tostring(suite, encoding="unicode")

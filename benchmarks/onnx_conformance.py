"""ONNX conformance: the backend node tests that ship inside the `onnx` wheel, through cascc's importer.

The wheel carries the generators of the node tests (`onnx.backend.test.case.node`), not their .pb files;
`collect_testcases` rebuilds every model with its input/output data sets in memory. Each test whose ops
cascc implements is imported (ONNX → torch.export Program), run through the exported program, and compared
with the expected outputs at the test's tolerance (default rtol 1e-3, atol 1e-7 as in ONNX's runner;
float32 is compared at atol 1e-5).

cascc compiles static graphs, so inputs that a test feeds at run time but that act as shapes or axes
(Reshape's shape, Slice's starts, Resize's scales, an If's condition, …) are bound to their test values as
initializers: first the integer (and bool) inputs, then, if tracing still needs them, every input after the
first. The JSON says which.

Two rates are reported: over the tests of supported ops (the importer's correctness) and over all node tests
(its coverage: tests of unimplemented ops, element types and modes count as not passed).

    python benchmarks/onnx_conformance.py [--ops Conv Relu …] [--out benchmarks/results]

Writes onnx_conformance.json to --out and the per-op table to docs/benchmarks/onnx_conformance.md (--doc PATH
elsewhere).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")


def main() -> None:
    import report

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", nargs="*", help="only tests of these ops")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    report.add_arguments(ap)
    args = ap.parse_args()

    from onnx.backend.test.case import node
    from rich.console import Console
    from rich.table import Table

    from cascc.frontends import onnx_ops
    from cascc.frontends.onnx import all_nodes

    cases = [c for c in node.collect_testcases(None) if c.model is not None]
    results = []
    start = time.time()
    for case in cases:
        nodes = list(all_nodes(case.model.graph))  # with the ops of If branches
        ops = sorted({n.op_type for n in nodes})
        if args.ops and not set(ops) & set(args.ops):
            continue
        unsupported = [o for o in ops if o not in onnx_ops.OPS]
        if unsupported or any(n.domain not in ("", "ai.onnx") for n in nodes):
            results.append(
                {
                    "test": case.name,
                    "ops": ops,
                    "status": "unsupported",
                    "reason": "op",
                    "detail": ", ".join(unsupported),
                }
            )
            continue
        results.append({"test": case.name, "ops": ops, **run_case(case)})
    elapsed = time.time() - start

    per_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        for o in r["ops"]:
            per_op[o][r["status"]] += 1
    table = Table(
        title=f"ONNX node tests through cascc ({len(results)} tests, {elapsed:.0f} s)", title_justify="left"
    )
    for col in ("op", "pass", "fail", "unsupported"):
        table.add_column(col)
    for name in sorted(per_op):
        c = per_op[name]
        if c["pass"] or c["fail"]:
            table.add_row(name, str(c["pass"]), str(c["fail"]), str(c["unsupported"]))
    console = Console()
    console.print(table)
    counted = [r for r in results if r["status"] != "unsupported"]
    passed = sum(r["status"] == "pass" for r in counted)
    rate = passed / max(len(counted), 1)
    rate_all = passed / max(len(results), 1)
    reasons = collections.Counter(r["reason"] for r in results if r["status"] == "unsupported")
    console.print(
        f"supported-op tests: {passed}/{len(counted)} pass ({rate:.1%}); all tests: {passed}/{len(results)} "
        f"pass ({rate_all:.1%}); not counted: "
        + ", ".join(f"{n} ({why} not implemented)" for why, n in reasons.most_common())
    )
    for r in counted:
        if r["status"] == "fail":
            console.print(f"[red]fail[/] {r['test']}: {r['detail'][:160]}", highlight=False)
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "pass_rate": rate,
        "pass_rate_all": rate_all,
        "passed": passed,
        "counted": len(counted),
        "total": len(results),
        "seconds": elapsed,
        "tests": results,
    }
    path = args.out / "onnx_conformance.json"
    path.write_text(json.dumps(payload, separators=(",", ":")))
    doc = report.write(args, "onnx_conformance", "ONNX conformance", markdown(results, elapsed), raw=path)
    if doc:
        console.print(f"wrote {doc}")


def markdown(results: list[dict], seconds: float) -> str:
    """The summary and the per-op table as Markdown (results as in onnx_conformance.json's `tests`)."""
    counted = [r for r in results if r["status"] != "unsupported"]
    passed = sum(r["status"] == "pass" for r in counted)
    reasons = collections.Counter(r["reason"] for r in results if r["status"] == "unsupported")
    bound = sum(bool(set(r.get("bind", [])) - {"none"}) for r in counted)
    per_op: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        for o in r["ops"]:
            per_op[o][r["status"]] += 1
    lines = [
        (
            "The backend node tests of the installed `onnx` wheel, imported by cascc and run through the "
            f"exported program: **{passed} of {len(counted)} tests of supported ops pass** "
            f"({passed / max(len(counted), 1):.1%}); over all {len(results)} node tests that is "
            f"**{passed / max(len(results), 1):.1%}** ({seconds:.0f} s). Not counted: "
            + ", ".join(f"{n} tests ({why} not supported)" for why, n in reasons.most_common())
            + f". {bound} of the counted tests had run-time inputs that act as shapes bound to their test "
            "values (cascc compiles static graphs)."
        ),
        "",
        "| op | pass | fail | unsupported |",
        "|---|---|---|---|",
    ]
    for name in sorted(per_op):
        c = per_op[name]
        if c["pass"] or c["fail"]:
            lines.append(f"| {name} | {c['pass']} | {c['fail']} | {c['unsupported']} |")
    failed = [r for r in counted if r["status"] == "fail"]
    if failed:
        lines += ["", "Failures:", ""] + [f"- `{r['test']}`: {r['detail'][:160]}" for r in failed]
    return "\n".join(lines)


def run_case(case) -> dict:
    """Import and run every data set of one node test; pass only if all match. An op mode cascc reports as
    unsupported (UnsupportedOp, e.g. Resize 'cubic') under every binding counts as unsupported, not as a
    failure."""
    from cascc.frontends.onnx import UnsupportedOp

    binds_used = set()
    for inputs, outputs in case.data_sets:
        outcome = refused = None
        for bind in ("none", "integer", "all-but-first", "all"):
            try:
                got = run_once(case.model, inputs, bind)
            except TypeError as exc:
                if "can't convert np.ndarray" not in str(exc):
                    outcome = ("fail", f"TypeError: {exc}")
                    continue
                return {"status": "unsupported", "reason": "element type", "detail": str(exc), "bind": []}
            except UnsupportedOp as exc:  # a mode, or a run-time value cascc needs constant (If's condition)
                refused = refused or exc
                continue
            except Exception as exc:
                outcome = ("fail", f"{type(exc).__name__}: {exc}")
                continue
            binds_used.add(bind)
            outcome = compare(got, outputs, case)
            break
        else:
            if refused is not None:  # no binding got past the refusal: the mode is unsupported
                reason = "element type" if "type" in str(refused) else "op mode"
                return {
                    "status": "unsupported",
                    "reason": reason,
                    "detail": str(refused),
                    "bind": sorted(binds_used),
                }
        if outcome[0] != "pass":
            return {"status": outcome[0], "detail": outcome[1], "bind": sorted(binds_used)}
    return {"status": "pass", "detail": "", "bind": sorted(binds_used)}


def as_array(data):
    """Test data as numpy (some data sets hold TensorProtos)."""
    from onnx import numpy_helper

    return numpy_helper.to_array(data) if hasattr(data, "data_type") else np.asarray(data)


def run_once(model, inputs, bind: str):
    import onnx
    import torch
    from onnx import numpy_helper

    from cascc.frontends.onnx import from_model

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph_inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    feeds = []
    # a node test may omit trailing optional inputs: those graph inputs get no data
    for index, (value, data) in enumerate(zip(graph_inputs, inputs, strict=False)):
        array = as_array(data)
        bound = (
            (bind == "integer" and array.dtype.kind in "iub")
            or (bind == "all-but-first" and index > 0)
            or bind == "all"
        )
        if bound or array.dtype.kind in "OUS":
            model.graph.initializer.append(numpy_helper.from_array(array, value.name))
            model.graph.input.remove(value)
        else:
            feeds.append(array)
    shapes = {v.name: tuple(as_array(d).shape) for v, d in zip(graph_inputs, inputs, strict=False)}
    remaining = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    program = from_model(model, source="conformance", input_shapes={n: shapes[n] for n in remaining})
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in feeds)
    with torch.no_grad():
        result = program.module()(*tensors)
    return result if isinstance(result, (tuple, list)) else (result,)


def compare(got, expected, case) -> tuple[str, str]:
    if len(got) < len(expected):
        return "fail", f"{len(got)} outputs, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected, strict=False)):  # extra outputs: compared up to ORT's
        g = g.detach().numpy() if hasattr(g, "detach") else np.asarray(g)
        e = as_array(e)
        if g.shape != e.shape:
            return "fail", f"output {i}: shape {g.shape}, expected {e.shape}"
        if e.dtype.kind in "fc":
            atol = max(getattr(case, "atol", 1e-7), 1e-5 if e.dtype == np.float32 else 1e-7)
            if not np.allclose(
                g.astype(e.dtype), e, rtol=getattr(case, "rtol", 1e-3), atol=atol, equal_nan=True
            ):
                return "fail", f"output {i}: max |diff| {np.nanmax(np.abs(g - e)):.3g}"
        elif not np.array_equal(g.astype(e.dtype), e):
            return "fail", f"output {i}: values differ"
    return "pass", ""


if __name__ == "__main__":
    sys.exit(main())

"""Ops TVM's torch importer lacks, converted by cascc: core-ATen ops a cascc frontend emits (ONNX
ReduceMax/ReduceMin/GlobalMaxPool/ReduceLogSumExp become `amax`/`amin`; ScatterElements with a reduction and
ScatterND with mul/max/min become `scatter_reduce`) that `from_exported_program` 0.27 has no converter for;
and the one imported op TVM would lower wrong, refused before lowering.

Each entry maps one ATen overload to the Relax op of the same meaning, in the `custom_convert_map` form TVM's
importer takes: `convert(node, importer) -> relax.Var`. Not an ATen→Relax table: only ops TVM misses.
"""

from __future__ import annotations

from collections.abc import Callable

import tvm
from tvm import relax

from cascc.errors import LoweringError
from cascc.registry import Registry

CONVERTERS: Registry[Callable] = Registry("torch importer op")


def _reduction(op: Callable) -> Callable:
    """aten.amax/amin(self, dim=[], keepdim=False): relax's max/min over `dim` (every axis when empty)."""

    def convert(node, importer) -> relax.Var:
        args = importer.retrieve_args(node)
        x = args[0]
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim", [])
        keepdim = args[2] if len(args) > 2 else node.kwargs.get("keepdim", False)
        axis = [dim] if isinstance(dim, int) else list(dim) or None
        return importer.block_builder.emit(op(x, axis=axis, keepdims=bool(keepdim)))

    return convert


CONVERTERS.register("amax.default")(_reduction(relax.op.max))
CONVERTERS.register("amin.default")(_reduction(relax.op.min))

# torch scatter_reduce's reduce -> relax scatter_elements' reduction. Both fold each update into the
# element in turn (with include_self, torch starts from the existing value, as relax does); "mean" has no
# entry: torch averages all updates with the element at once, relax averages pairwise as it goes.
SCATTER_REDUCTIONS = {"sum": "add", "prod": "mul", "amax": "max", "amin": "min"}


@CONVERTERS.register("scatter_reduce.two")
def scatter_reduce(node, importer) -> relax.Var:
    """aten.scatter_reduce.two(self, dim, index, src, reduce, *, include_self=True) as relax.scatter_elements
    with the matching reduction."""
    x, dim, index, src, reduce = importer.retrieve_args(node)[:5]
    include_self = node.kwargs.get("include_self", True)
    index_shape = tuple(node.args[2].meta["val"].shape)
    src_shape = tuple(node.args[3].meta["val"].shape)
    if reduce not in SCATTER_REDUCTIONS or not include_self or index_shape != src_shape:
        raise NotImplementedError(
            f"aten.scatter_reduce.two (reduce={reduce!r}, include_self={include_self}, index {index_shape}, "
            f"src {src_shape}) has no Relax equivalent: cascc converts reduce "
            f"{'/'.join(SCATTER_REDUCTIONS)} with include_self=True and src shaped as index"
        )
    return importer.block_builder.emit(
        relax.op.scatter_elements(x, index, src, axis=dim, reduction=SCATTER_REDUCTIONS[reduce])
    )


def refuse_misaddressed_scatters(mod) -> None:
    """Refuse a relax.scatter_elements whose indices TVM 0.27's kernel (TOPI's, CPU and GPU alike) would
    address wrong: it flattens the dims before and after the axis with the indices' extents but offsets into
    the data with the data's, which agree only where the indices match the data in every dim but the first,
    the axis and the one after it. Such a model would compile and give wrong numbers."""
    op = tvm.ir.Op.get("relax.scatter_elements")
    bad: list[str] = []

    def dims(expr) -> list:
        return [int(d) if isinstance(d, tvm.tirx.IntImm) else str(d) for d in expr.ty.shape]

    def visit(expr) -> None:
        if isinstance(expr, relax.Call) and expr.op.same_as(op):
            data, indices = dims(expr.args[0]), dims(expr.args[1])
            axis = int(expr.attrs.axis) % len(data)
            if data[1:axis] != indices[1:axis] or data[axis + 2 :] != indices[axis + 2 :]:
                bad.append(f"indices {tuple(indices)} into data {tuple(data)} along axis {axis}")

    for _, func in mod.functions_items():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func.body, visit)
    if bad:
        raise LoweringError(
            None,
            f"scatter_elements (ONNX ScatterElements, torch scatter/scatter_reduce) with {'; '.join(bad)}: "
            "TVM 0.27's kernel addresses indices wrong unless they match the data's shape in every dim but the "
            "first, the axis and the dim after it",
            "pad the indices and updates to the data's shape in the other dims, or scatter a reshaped tensor",
        )

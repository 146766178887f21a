"""Relax rewrite: linear and conv2d layers with constant weights become calls to cascc kernels.

Each layer (see `patterns.py`, with its bias, BatchNorm and ReLU/ReLU6 epilogue fused) is replaced by
`call_tir` to a sparse or dense kernel, whichever the target's cost model predicts faster:

- linear, few rows (batch < `wide_min_batch`): narrow kernels, vectorized over output units (tiled ELL
  gathering x per lane or broadcasting an r×1 block's shared column) or over a 1×C block's columns (BSR);
  the format whose stored weights, padding included, the cost model prices lowest;
- linear with many rows, and conv2d: wide kernels, vectorized over rows/pixels with weights broadcast —
  tiled-ELL sparse or packed dense. Their operand is flat with a start offset per reduction row, so a
  1×1 conv is a plain reshape, a stride-1 k×k conv reads taps of the padded image in place (direct, no
  im2col), and a strided conv goes through im2col;
- depthwise conv2d: direct kernels; stride-1 same-size ones on small images also in a sparse form over the
  nonzero taps (other forms run their zeros dense, and the decision says so);
- other grouped convs: the full block-diagonal weight, whose zeros between groups the sparse kernels skip.

Strided dilated convs stay with TVM's generic lowering. Every rewrite records a Decision.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import rewrite_call

from cascc.targets import KernelCosts

from . import cost
from .decision import Decision
from .kernels import conv as conv_kernels
from .kernels.formats import RowTiles, TiledEll, pack_block_rows, pack_dense, pack_tiled_ell, padded
from .kernels.linear import (
    batched_matmul,
    block_rows_linear,
    dense_linear,
    tiled_ell_linear,
    wide_dense,
    wide_sparse,
)
from .patterns import Chain, LayerPatterns


def weight_key(w: np.ndarray) -> str:
    """Identity of a weight by content: Relax constants carry no parameter names."""
    return hashlib.sha256(np.ascontiguousarray(w, dtype=np.float32).tobytes()).hexdigest()


@dataclass(frozen=True, eq=False)
class Candidate:
    """One kernel for one layer: its PrimFunc, constant arguments, activation input and output shapes."""

    kernel: str
    func: tvm.tirx.PrimFunc
    consts: tuple[np.ndarray, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Epilogue:
    """What follows the layer's core op, folded: effective weight, per-output bias and activation."""

    weight: np.ndarray
    bias: np.ndarray | None
    act: str | None
    groups: int = 1  # > 1: `weight` is a grouped conv's block-diagonal expansion

    @property
    def density(self) -> float:
        """The layer's density (of the grouped weight, not of its block-diagonal expansion)."""
        return min(1.0, density_of(self.weight) * self.groups)


@tvm.transform.module_pass(opt_level=0, name="CasccKernelRewrite")
class KernelRewrite:
    """Replace linear/conv layers of `main` by cascc kernels; `decisions` fills with one entry per layer."""

    def __init__(
        self,
        costs: KernelCosts,
        names: Mapping[str, Sequence[str]],
        cores: int = 1,
        keep_candidates: bool = False,
    ):
        self.costs = costs
        self.keep_candidates = keep_candidates  # keep both kernels of each layer (for `--measure`)
        self.candidates: dict[str, dict[str, Candidate]] = {}
        # weight_key -> layer names in graph order (copies of one layer share a key, e.g. nn.TransformerEncoder);
        # the rewrite meets layers in graph order too, so each match takes the next name
        self.names = {key: deque(layer_names) for key, layer_names in names.items()}
        self.cores = cores
        self.decisions: dict[str, Decision] = {}
        self._packed: tuple[Epilogue, TiledEll] | None = None  # the last layer's wide packing

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        return rewrite_layers(self, mod, self._batched_matmul)

    # ---- linear ----------------------------------------------------------------------------------------

    def _linear(self, pats: LayerPatterns, chain: Chain, expr, m):
        matched = match_linear(pats, chain, m)
        if matched is None:
            return expr
        x, (rows, k), weight, ep = matched
        n = weight.shape[0]
        name = self._name(weight)
        if rows < self.costs.wide_min_batch:
            return self._narrow(name, x, rows, k, n, ep)
        lanes = self.costs.wide_lanes
        mpad = operand_pitch(rows, lanes)
        xt = relax.op.permute_dims(x, [1, 0])
        if mpad != rows:
            xt = relax.op.nn.pad(xt, [0, 0, 0, mpad - rows])
        a = relax.op.reshape(xt, (1, k * mpad))
        out = self._wide(name, a, k * mpad, 1, k, rows, n, ep, "", rows_at(k, mpad))  # (1, n, rows)
        return relax.op.permute_dims(relax.op.reshape(out, (n, rows)), [1, 0])

    def _narrow(self, name, x, batch, k, n, ep: Epilogue):
        c = self.costs
        dense_us = cost.narrow_dense(c, batch, k, n)
        best = cost.narrow_formats(c, batch, ep.weight)[0]
        choice = cost.choose(c, dense_us, best.us, ep.density, best.label)

        def sparse() -> Candidate:
            func, consts = narrow_sparse(c, best, batch, k, ep, self._parallel(best.us))
            return Candidate(f"sparse {best.label}", func, consts, (batch, k), (batch, len(consts[-1])))

        def dense() -> Candidate:
            packed = pack_dense(ep.weight, ep.bias, c.dense_tile)
            func = dense_linear(
                batch,
                k,
                packed.weights.shape[0],
                c.dense_tile,
                cost.batch_tile(c, batch),
                ep.act,
                parallel=self._parallel(dense_us),
            )
            return Candidate(
                f"dense packed {c.dense_tile}-wide",
                func,
                (packed.weights, packed.bias),
                (batch, k),
                (batch, packed.bias.shape[0]),
            )

        chosen = self._choose(name, ep, choice, sparse, dense)
        call = self._call(chosen, name, choice.sparse, x)
        width = chosen.out_shape[1]
        return call if width == n else relax.op.strided_slice(call, axes=[1], begin=[0], end=[n])

    # ---- wide operand: C[b, n, m] = W · A[b, :, m] ---------------------------------------------------------

    def _wide(self, name, a, alen: int, batch, k, m, n, ep: Epilogue, via: str, koff: np.ndarray, lanes=None):
        """Emit the wide kernel on the flat operand A[b, alen] whose row k starts at koff[k] (see
        `linear.wide_dense`), vectorized `lanes` wide (default: the target's); returns C[b, n, m]."""
        c = self.costs
        lanes = lanes or c.wide_lanes
        ell = self._wide_packing(ep, n, k)
        dense_us, sparse_us = cost.wide(c, batch * m, k, n, ell)
        choice = cost.choose(c, dense_us, sparse_us, ep.density, "wide")

        def sparse() -> Candidate:
            data, cols = _nonempty(ell, 1)
            offsets = np.ascontiguousarray(koff[cols]).astype(scalar_index(alen))
            func = wide_sparse(
                batch,
                m,
                n,
                ell.rows,
                data.shape[0],
                lanes,
                alen,
                ep.act,
                parallel=self._parallel(sparse_us),
                index_dtype=str(offsets.dtype),
                shared=ell.shared,
            )
            return Candidate(
                f"sparse wide tiled-ELL {ell.rows}-row{' r×1 broadcast' if ell.shared else ''}{via}",
                func,
                (data, offsets, ell.ptr, ell.bias, ell.order),
                (batch, alen),
                (batch, n, m),
            )

        def dense() -> Candidate:
            rows, dense_lanes = c.wide_dense_tile if n >= c.wide_dense_tile[0] else (c.wide_rows, lanes)
            dense_lanes = min(dense_lanes, lanes)  # the operand was laid out for `lanes`-wide chunks
            packed = pack_dense(ep.weight.reshape(n, k), ep.bias, rows)
            func = wide_dense(
                batch, k, m, n, rows, dense_lanes, alen, ep.act, parallel=self._parallel(dense_us)
            )
            return Candidate(
                f"dense wide {rows}-row{via}",
                func,
                (packed.weights, koff, packed.bias),
                (batch, alen),
                (batch, n, m),
            )

        return self._call(self._choose(name, ep, choice, sparse, dense), name, choice.sparse, a)

    # ---- activation × activation (attention) -------------------------------------------------------------

    def _batched_matmul(self, pats: LayerPatterns, expr, m):
        a, b = m[pats.lhs], m[pats.rhs]
        try:
            sa = [int(d) for d in a.ty.shape]
            sb = [int(d) for d in b.ty.shape]
        except (TypeError, AttributeError):
            return expr  # symbolic shapes: TVM's generic lowering
        if len(sa) != 3 or len(sb) != 3 or sa[0] != sb[0] or sa[2] != sb[1] or str(a.ty.dtype) != "float32":
            return expr
        batch, rows, k = sa
        n = sb[2]
        lanes = next((w for w in (32, 16) if n % w == 0), None)
        if lanes is None:
            return expr
        work_us = self.costs.wide_dense_ns_per_mac * batch * rows * k * n / 1e3
        func = batched_matmul(
            batch, rows, k, n, self.costs.wide_rows, lanes, parallel=self._parallel(work_us)
        )
        gv = add_kernel(self.bb, func, f"cascc_batched_matmul_{batch}x{rows}x{k}x{n}")
        return relax.call_tir(gv, [a, b], relax.TensorType((batch, rows, n), "float32"))

    # ---- conv2d --------------------------------------------------------------------------------------------

    def _conv(self, pats: LayerPatterns, chain: Chain, expr, m):
        call = m[pats.conv]
        attrs = call.attrs
        if attrs.data_layout != "NCHW" or attrs.kernel_layout != "OIHW" or attrs.out_layout != "NCHW":
            return expr
        x = m[pats.x]
        batch, channels, height, width = (int(d) for d in x.ty.shape)
        weight = m[pats.w].value.numpy()
        out_c, _, kh, kw = weight.shape
        groups = int(attrs.groups)
        stride = tuple(int(s) for s in attrs.strides)
        pad = tuple(int(p) for p in attrs.padding)
        dil = tuple(int(d) for d in attrs.dilation)
        oh = (height + pad[0] + pad[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
        ow = (width + pad[1] + pad[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
        depthwise = groups == channels == out_c and weight.shape[1] == 1 and dil == (1, 1)
        k, mcols = channels * kh * kw, oh * ow
        mpad = operand_pitch(mcols, self.costs.wide_lanes)
        # a 1×1 conv reads its input in place when its pixels fill at least one vector (full or half width)
        plain_lanes = next(
            (w for w in (self.costs.wide_lanes, self.costs.wide_lanes // 2) if mcols >= w), None
        )
        as_reshape = (
            (kh, kw) == (1, 1) and stride == (1, 1) and pad == (0, 0, 0, 0) and plain_lanes is not None
        )
        direct = stride == (1, 1) and (kh, kw) != (1, 1) and self.costs.direct_conv
        if dil != (1, 1) and not (as_reshape or direct):
            return expr  # dilated and strided: TVM's generic lowering; decide() says so
        ep = _epilogue(pats, chain, m, weight)
        if ep is None:
            return expr
        name = self._name(weight)
        if depthwise:
            return self._depthwise(
                name, x, (batch, channels, height, width), (kh, kw), stride, pad, (oh, ow), ep
            )
        if groups > 1:  # the zeros between groups are skipped like pruned ones
            ep = dataclasses.replace(ep, weight=block_diagonal(ep.weight, groups), groups=groups)
        if as_reshape:
            a = relax.op.reshape(x, (batch, channels * mcols))
            via = f" (1×1 conv{_grouped(ep)})"
            koff = rows_at(channels, mcols)
            out = self._wide(name, a, k * mcols, batch, k, mcols, out_c, ep, via, koff, plain_lanes)
            return relax.op.reshape(out, (batch, out_c, oh, ow))
        if direct and (dil != (1, 1) or self._direct_pays(batch, k, (oh, ow), width + pad[1] + pad[3], ep)):
            return self._direct_conv(name, x, (kh, kw), pad, dil, (oh, ow), ep)
        copy_us = self._copy_us(batch * k * mpad)
        im2col = conv_kernels.im2col(
            batch,
            channels,
            height,
            width,
            (kh, kw),
            stride,
            pad,
            (oh, ow),
            mpad,
            parallel=self._parallel(copy_us),
        )
        gv = add_kernel(self.bb, im2col, f"{_symbol(name)}_im2col")
        a = relax.call_tir(
            gv, [x, relax.const(np.zeros(1, np.float32))], relax.TensorType((batch, k, mpad), "float32")
        )
        a = relax.op.reshape(a, (batch, k * mpad))
        via = f" (conv {kh}×{kw} via im2col{_grouped(ep)})"
        out = self._wide(name, a, k * mpad, batch, k, mcols, out_c, ep, via, rows_at(k, mpad))
        return relax.op.reshape(out, (batch, out_c, oh, ow))

    def _direct_conv(self, name, x, kernel, pad, dil, out_hw, ep: Epilogue):
        """Stride-1 conv without im2col: on the zero-padded image flattened per channel, output pixel
        f = i·Wp + j reads tap (c, p, q) at c·plane + p·dil·Wp + q·dil + f, so each tap is a contiguous row
        of the operand at a fixed offset. The kernel computes the Wp − OW border columns too; a slice drops them.
        """
        batch, channels, height, width = (int(d) for d in x.ty.shape)
        kh, kw = kernel
        oh, ow = out_hw
        wp = width + pad[1] + pad[3]
        m = oh * wp
        # rows below the image so the last tap's last chunk (`lanes` wide) stays inside its channel's plane
        reach = (kh - 1) * dil[0] * wp + (kw - 1) * dil[1] + padded(m, self.costs.wide_lanes)
        hp = max(height + pad[0] + pad[2], -(-reach // wp))
        pad_us = self._copy_us(batch * channels * hp * wp)
        planes = conv_kernels.pad_planes(
            batch, channels, height, width, pad[0], pad[1], (hp, wp), parallel=self._parallel(pad_us)
        )
        gv = add_kernel(self.bb, planes, f"{_symbol(name)}_pad")
        fill = relax.const(np.zeros(1, np.float32))
        xp = relax.call_tir(gv, [x, fill], relax.TensorType((batch, channels, hp, wp), "float32"))
        a = relax.op.reshape(xp, (batch, channels * hp * wp))
        taps = np.add.outer(np.arange(kh) * dil[0] * wp, np.arange(kw) * dil[1])  # [kh, kw]
        koff = (np.arange(channels)[:, None, None] * (hp * wp) + taps).reshape(-1).astype(np.int32)
        out_c = ep.weight.shape[0]
        via = f" (conv {kh}×{kw} direct{_grouped(ep)})"
        k = channels * kh * kw
        out = self._wide(name, a, channels * hp * wp, batch, k, m, out_c, ep, via, koff)
        if wp == ow:
            return relax.op.reshape(out, (batch, out_c, oh, ow))
        copy_us = self._copy_us(batch * out_c * m)
        crop = conv_kernels.crop_planes(batch, out_c, oh, wp, ow, parallel=self._parallel(copy_us))
        gv = add_kernel(self.bb, crop, f"{_symbol(name)}_crop")
        return relax.call_tir(gv, [out, fill], relax.TensorType((batch, out_c, oh, ow), "float32"))

    def _depthwise(self, name, x, shape, kernel, stride, pad, out_hw, ep: Epilogue):
        batch, channels, height, width = shape
        work_us = (
            self.costs.depthwise_ns_per_mac
            * batch
            * channels
            * out_hw[0]
            * out_hw[1]
            * kernel[0]
            * kernel[1]
            / 1e3
        )
        parallel = self._parallel(work_us)
        bias = ep.bias if ep.bias is not None else np.zeros(channels, np.float32)
        weight = ep.weight.reshape(channels, *kernel)
        same = stride == (1, 1) and out_hw == (height, width)
        out_shape = (batch, channels, *out_hw)
        if same and height * width <= self.costs.depthwise_same_max_pixels:
            masks = conv_kernels.column_mask(height, width, kernel[1], pad[1])
            nnz = int(np.count_nonzero(weight))
            # sparse, in dense taps: each stored tap, plus per channel the tile and store work (fitted)
            taps = self.costs.depthwise_sparse_tap * nnz + self.costs.depthwise_sparse_channel * channels
            sparse_us = self.costs.depthwise_ns_per_mac * batch * height * width * taps / 1e3
            choice = cost.choose(self.costs, work_us, sparse_us, ep.density, "depthwise taps")

            def sparse() -> Candidate:
                ptr, *taps = conv_kernels.depthwise_taps(weight, width)
                func = conv_kernels.depthwise_same_sparse(
                    batch,
                    channels,
                    height,
                    width,
                    kernel,
                    (pad[0], pad[1]),
                    len(taps[0]),
                    ep.act,
                    parallel=self._parallel(sparse_us),
                )
                return Candidate(
                    "sparse depthwise flat taps", func, (ptr, *taps, bias, masks), shape, out_shape
                )

            def dense() -> Candidate:
                func = conv_kernels.depthwise_same(
                    batch, channels, height, width, kernel, (pad[0], pad[1]), ep.act, parallel=parallel
                )
                return Candidate("dense depthwise flat", func, (weight, bias, masks), shape, out_shape)

            chosen = self._choose(name, ep, choice, sparse, dense)
            return self._call(chosen, name, choice.sparse, x)
        if stride == (2, 2) and out_hw[1] >= 16:
            func = conv_kernels.depthwise_stride2(
                batch, channels, height, width, kernel, pad, out_hw, ep.act, parallel=parallel
            )
            cand = Candidate(
                "dense depthwise stride-2 deinterleaved",
                func,
                (weight, bias),
                shape,
                (batch, channels, *out_hw),
            )
        else:
            func = conv_kernels.depthwise(
                batch, channels, height, width, kernel, stride, pad, out_hw, ep.act, parallel=parallel
            )
            cand = Candidate(
                "dense depthwise direct", func, (weight, bias), shape, (batch, channels, *out_hw)
            )
        density = ep.density
        reason = (
            "unmasked" if density == 1.0 else "no sparse kernel for this depthwise form yet: zeros run dense"
        )
        self.decisions[name] = Decision(name, density, cand.kernel, reason, round(work_us, 3))
        if self.keep_candidates:
            self.candidates[name] = {"dense": cand}
        return self._call(cand, name, False, x)

    def _direct_pays(self, batch, k, out_hw, wp, ep: Epilogue) -> bool:
        """Direct conv computes OH·Wp columns with no copy; im2col computes OH·OW after copying K·OH·OW
        floats. Direct wins unless the border columns cost more than the copy (small images, e.g. 8×8 with
        Wp = 10: 25% more columns), judged with the kernel (dense or sparse) the layer will get."""
        c = self.costs
        n = ep.weight.shape[0]
        ell = self._wide_packing(ep, n, k)
        oh, ow = out_hw

        def kernel_us(m: int) -> float:  # the predicted time of the kernel the layer will get
            dense_us, sparse_us = cost.wide(c, batch * m, k, n, ell)
            return sparse_us if cost.choose(c, dense_us, sparse_us, ep.density, "").sparse else dense_us

        return kernel_us(oh * wp) <= kernel_us(oh * ow) + self._copy_us(batch * k * oh * ow)

    def _wide_packing(self, ep: Epilogue, n: int, k: int) -> TiledEll:
        """The layer's wide tiled-ELL packing (shared columns where the cost model prices them lower), packed
        once: `_direct_pays` and `_wide` both need it."""
        if self._packed is None or self._packed[0] is not ep:
            weight, rows = ep.weight.reshape(n, k), self.costs.wide_rows
            shared = cost.wide_shared_pays(self.costs, weight)
            self._packed = (ep, pack_tiled_ell(weight, ep.bias, rows, 1, shared=shared))
        return self._packed[1]

    def _copy_us(self, floats: int) -> float:
        return 4 * floats * self.costs.copy_ns_per_byte / 1e3

    # ---- shared --------------------------------------------------------------------------------------------

    def _parallel(self, predicted_us: float) -> bool:
        """Parallel only where the kernel's work repays the thread-pool launch."""
        return self.cores > 1 and predicted_us >= self.costs.parallel_min_us

    def _name(self, weight: np.ndarray) -> str:
        return layer_name(self.names, weight, len(self.decisions))

    def _choose(self, name: str, ep: Epilogue, choice: cost.Choice, sparse, dense) -> Candidate:
        """Build the chosen candidate, record the decision, and keep both candidates when measuring."""
        chosen = sparse() if choice.sparse else dense()
        self.decisions[name] = Decision(
            name,
            ep.density,
            chosen.kernel,
            choice.reason,
            round(choice.dense_us, 3),
            round(choice.sparse_us, 3),
        )
        if self.keep_candidates:
            self.candidates[name] = {
                "sparse": chosen if choice.sparse else sparse(),
                "dense": dense() if choice.sparse else chosen,
            }
        return chosen

    def _call(self, cand: Candidate, name: str, sparse: bool, activation):
        gv = add_kernel(self.bb, cand.func, f"{_symbol(name)}_{'sparse' if sparse else 'dense'}")
        args = [activation, *map(relax.const, cand.consts)]
        return relax.call_tir(gv, args, relax.TensorType(cand.out_shape, "float32"))


OPAQUE = 8  # relay/relax OpPatternKind.kOpaque: FuseOps leaves the kernel alone


def add_kernel(bb: relax.BlockBuilder, func: tvm.tirx.PrimFunc, symbol: str) -> tvm.ir.GlobalVar:
    """Add a kernel under a unique symbol (TVMScript names every generated function `kernel`), unfusable."""
    return bb.add_func(func.with_attr("global_symbol", symbol).with_attr("op_pattern", OPAQUE), symbol)


def rewrite_layers(rewriter, mod: tvm.IRModule, batched_matmul=None) -> tvm.IRModule:
    """Run `rewriter._linear` / `._conv` (and `batched_matmul`, if given) over every layer pattern of `main`;
    the rewriter's BlockBuilder (`rewriter.bb`) collects the kernels it adds."""
    rewriter.bb = relax.BlockBuilder(mod)
    pats = LayerPatterns()
    main = mod["main"]
    for chain in pats.linear_chains:
        main = rewrite_call(chain.pattern, lambda e, m, c=chain: rewriter._linear(pats, c, e, m), main)
    for chain in pats.conv_chains:
        main = rewrite_call(chain.pattern, lambda e, m, c=chain: rewriter._conv(pats, c, e, m), main)
    if batched_matmul is not None:
        main = rewrite_call(pats.activation_matmul, lambda e, m: batched_matmul(pats, e, m), main)
    out = rewriter.bb.get()
    out[out.get_global_var("main")] = main
    return relax.transform.DeadCodeElimination()(out)


def match_linear(pats: LayerPatterns, chain: Chain, m) -> tuple | None:
    """(activation, (rows, k), raw weight, folded epilogue) of a matched 2-D fp32 linear layer, else None."""
    if [int(a) for a in m[pats.wt].attrs.axes] != [1, 0]:
        return None
    x = m[pats.x]
    shape = [int(d) for d in x.ty.shape]
    weight = m[pats.w].value.numpy()
    if len(shape) != 2 or weight.ndim != 2 or weight.dtype != np.float32:
        return None
    ep = _epilogue(pats, chain, m, weight)
    return None if ep is None else (x, (shape[0], shape[1]), weight, ep)


def layer_name(names: Mapping[str, deque], weight: np.ndarray, index: int) -> str:
    """The Program's name of the layer holding `weight` (copies of one layer are named in graph order)."""
    queue = names.get(weight_key(weight))
    if not queue:
        return f"layer_{index}"
    return queue.popleft() if len(queue) > 1 else queue[0]


def _epilogue(pats: LayerPatterns, chain: Chain, m, weight: np.ndarray) -> Epilogue | None:
    """Fold bias and BatchNorm into (weight, bias) and read the activation; None if the match is not foldable."""
    n = weight.shape[0]
    bias = None
    if chain.bias:
        bias = m[pats.bias].value.numpy().astype(np.float32).reshape(-1)
        if bias.shape != (n,):
            return None
    if chain.batch_norm:
        gamma, beta, mean, var = (m[c].value.numpy().astype(np.float64) for c in pats.bn_consts)
        eps = float(m[chain.bn_call].attrs.epsilon)
        scale = gamma / np.sqrt(var + eps)
        weight = (weight * scale.reshape((n,) + (1,) * (weight.ndim - 1))).astype(np.float32)
        bias = ((bias if bias is not None else 0.0) - mean) * scale + beta
        bias = bias.astype(np.float32)
    if chain.act == "relu6":
        lo, hi = (_prim_value(m[p]) for p in (pats.clip_lo, pats.clip_hi))
        if (lo, hi) != (0.0, 6.0):
            return None
    return Epilogue(weight, bias, chain.act)


def _prim_value(expr) -> float | None:
    """The number a clip bound holds: a FloatImm/IntImm (TVM's torch importer) or a PrimValue wrapping one."""
    value = getattr(expr, "value", None)
    if isinstance(value, (int, float)):
        return float(value)
    return float(value.value) if hasattr(value, "value") else None


def narrow_sparse(
    costs: KernelCosts, fmt: cost.NarrowFormat, batch: int, k: int, ep: Epilogue, parallel: bool
):
    """The kernel of a narrow layer in format `fmt`, with its constant arguments (data, columns, tile offsets,
    bias, row order)."""
    if fmt.kind == "block":
        packed = pack_block_rows(ep.weight, ep.bias, fmt.rows, fmt.width)
        data, cols = _nonempty(packed, 1, scalar_index(k))
        func = block_rows_linear(
            batch, k, len(packed.ptr) - 1, fmt.rows, len(data), fmt.width, ep.act, parallel, str(cols.dtype)
        )
    else:
        shared = fmt.kind == "broadcast"
        packed = pack_tiled_ell(ep.weight, ep.bias, fmt.rows, costs.sparse_unroll, shared)
        data, cols = _nonempty(packed, costs.sparse_unroll, scalar_index(k) if shared else np.int32)
        func = tiled_ell_linear(
            batch,
            k,
            len(packed.ptr) - 1,
            fmt.rows,
            len(data),
            costs.sparse_unroll,
            shared,
            ep.act,
            parallel,
            str(cols.dtype),
        )
    return func, (data, cols, packed.ptr, packed.bias, packed.order)


def _nonempty(packed: RowTiles, min_slots: int, index=np.int32) -> tuple[np.ndarray, np.ndarray]:
    """Data and column arrays (columns as `index`) with at least `min_slots` slots (an all-zero layer still
    needs buffers)."""
    slots = max(packed.slots, min_slots)
    data = np.zeros((slots,) + packed.data.shape[1:], np.float32)
    data[: packed.slots] = packed.data
    cols = np.zeros((slots,) + packed.cols.shape[1:], index)
    cols[: packed.slots] = packed.cols
    return data, cols


def scalar_index(k: int):
    """Index type of a kernel that loads one column index at a time (r×1 broadcast, 1×C blocks): int16 where
    every column fits, which was 2–3% faster than int32 on a 1024×1024 layer. Per-lane gathered indices stay
    int32: there int16 ran at 86 µs against 42 µs on a 10%-dense 1024×1024 layer, as LLVM widens each index
    separately instead of loading a vector of them."""
    return np.int16 if k <= np.iinfo(np.int16).max + 1 else np.int32


def _grouped(ep: Epilogue) -> str:
    return f", {ep.groups} groups block-diagonal" if ep.groups > 1 else ""


def block_diagonal(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's weight [O, C/G, kh, kw] as the equivalent full weight [O, C, kh, kw]: group g's
    outputs see only its own input channels, every other entry is zero (and skipped by the sparse kernel)."""
    out_c, per_group = weight.shape[:2]
    full = np.zeros((out_c, per_group * groups, *weight.shape[2:]), np.float32)
    step = out_c // groups
    for g in range(groups):
        full[g * step : (g + 1) * step, g * per_group : (g + 1) * per_group] = weight[
            g * step : (g + 1) * step
        ]
    return full


def operand_pitch(m: int, lanes: int) -> int:
    """Floats per row of a wide kernel's operand: room for m columns and for one whole vector, in an odd
    number of 64-byte lines. At an even number (worst: a multiple of 4 KB) the rows a sparse tile reads at
    one column fall into few L1 sets and evict each other: 512×128 at 20% over 2048 tokens ran 2.5× slower
    at pitch 2048 than at 2064 (dense: no difference)."""
    pitch = padded(max(m, lanes), 16)
    return pitch if (pitch // 16) % 2 else pitch + 16


def rows_at(rows: int, pitch: int) -> np.ndarray:
    """Offsets of the rows of a [rows, pitch] operand in its flat layout."""
    return (np.arange(rows) * pitch).astype(np.int32)


def density_of(weight: np.ndarray) -> float:
    """Share of nonzero entries."""
    return float(np.count_nonzero(weight)) / weight.size if weight.size else 0.0


def _symbol(name: str) -> str:
    return "cascc_" + "".join(ch if ch.isalnum() else "_" for ch in name)

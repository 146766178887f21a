"""The Relax rewrite driver: layers with constant weights become calls to the kernel family's kernels.

The driver matches each layer pattern (`patterns.py`: linear and conv2d with their bias, BatchNorm and
ReLU/ReLU6 epilogue, longest first; activation × activation matmuls; embedding lookups), folds the epilogue (`epilogue.py`),
names the layer after the Program's parameter holding its weight, and hands a typed layer record to the
family's strategy for its kind (`strategies/`). A layer the driver or a strategy declines stays a Relax op
for TVM's generic lowering, and `Context.why` records the reason where it declines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import rewrite_call

from cascc.targets import Target

from .context import Candidate, Context, static_shape, weight_key
from .decision import Decision, Decline
from .epilogue import density_of, fold
from .patterns import Chain, LayerPatterns
from .scalar_scale import peel_scale
from .strategies import ConvLayer, LinearLayer, MatmulLayer
from .strategies.embedding import EmbeddingLayer


@tvm.transform.module_pass(opt_level=0, name="CasccLayerRewrite")
class LayerRewrite:
    """Replace the layers of `main` by the target's kernel family; `decisions` fills with one entry per
    layer the rewrite saw, `candidates` (with `keep_candidates`) with both kernels of each priced layer."""

    def __init__(
        self,
        target: Target,
        names: Mapping[str, Sequence[str]],
        cores: int = 1,
        keep_candidates: bool = False,
        int8: Mapping[str, object] | None = None,
        dot: str = "widen",
    ):
        from .family import family

        self.target = target
        self.family = family(target.kernels)
        # weight_key -> layer names in graph order (copies of one layer share a key, e.g. nn.TransformerEncoder);
        # the rewrite meets layers in graph order too, so each new weight constant takes the next name
        self.names = {key: deque(layer_names) for key, layer_names in names.items()}
        self.cores = cores
        self.keep_candidates = keep_candidates
        self.int8 = dict(int8 or {})  # layer name -> LayerPrecision of the layers that compute in int8
        self.dot = dot
        self.decisions: dict[str, Decision] = {}
        self.candidates: dict[str, dict[str, Candidate]] = {}

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        from .computed_weights import FoldComputedWeights
        from .conv1d import Conv1dAsConv2d
        from .global_pool import GlobalPoolAsMean
        from .identity_views import fold_identity_views
        from .operand_chain import chain_wide_operands
        from .pad_fold import FoldPadIntoConv
        from .sink_views import SinkViews
        from .transposed_attention import transpose_attention
        from .zero_mask import DropZeroMasks

        mod = DropZeroMasks()(mod)  # masks built from position ranges that mask nothing (ViT, Wav2Vec2)
        mod = FoldComputedWeights()(mod)  # weight-normed convs get their weight at compile time
        mod = Conv1dAsConv2d()(mod)  # 1-D convs take the conv strategies as 1-high 2-D ones
        mod = FoldPadIntoConv()(mod)  # explicit zero pads (TensorFlow's "same") become the conv's padding
        mod = GlobalPoolAsMean()(mod)  # a pool whose window covers the input is the plane's mean
        mod = SinkViews()(mod)  # a 3-D Linear's activation after its view back folds into the layer
        for family_rewrite in self.family.rewrites:
            mod = family_rewrite()(mod)
        ctx = Context(self.target, relax.BlockBuilder(mod), self.cores, self.keep_candidates, self.dot)
        self._ctx, self._named = ctx, {}
        pats = LayerPatterns()
        strategies = self.family.strategies
        main = mod["main"]
        for chain in pats.linear_chains:
            main = rewrite_call(chain.pattern, lambda e, m, c=chain: self._linear(pats, c, e, m), main)
        for chain in pats.conv_chains:
            main = rewrite_call(chain.pattern, lambda e, m, c=chain: self._conv(pats, c, e, m), main)
        if strategies.attention is not None:
            main = transpose_attention(ctx, main)  # over channel-major q/k/v: no layout copies
            main = relax.analysis.remove_all_unused(main)  # the replaced matmuls get no kernel
            var2val = relax.analysis.get_var2val(main)
            main = rewrite_call(pats.activation_matmul, lambda e, m: self._matmul(pats, e, m, var2val), main)
        if strategies.embedding is not None:
            main = rewrite_call(pats.embedding, lambda e, m: self._embedding(pats, e, m), main)
        main = chain_wide_operands(ctx, main)  # a wide layer's output feeds the next one untransposed
        main = fold_identity_views(main)  # transposes that move no element (attention's Kᵀ) become reshapes
        self.decisions, self.candidates = ctx.decisions, ctx.candidates
        out = ctx.bb.get()
        out[out.get_global_var("main")] = main
        return relax.transform.DeadCodeElimination()(out)

    # ---- naming ----------------------------------------------------------------------------------------

    def _name(self, const, weight: np.ndarray, x) -> str | None:
        """The Program's name of the layer holding this weight constant and reading `x` (copies of one layer
        are named in graph order), remembered per (constant, input): Relax rewrites may merge the equal
        constants of identical copies into one node, and a layer a shorter pattern revisits keeps its
        name; None for a constant no prunable layer holds."""
        key = (const, x)
        if key not in self._named:
            queue = self.names.get(weight_key(weight))
            self._named[key] = (queue.popleft() if len(queue) > 1 else queue[0]) if queue else None
        return self._named[key]

    def _layer_name(self, name: str | None) -> str:
        return name if name is not None else f"layer_{self._ctx.index}"

    # ---- matching --------------------------------------------------------------------------------------

    def _linear(self, pats: LayerPatterns, chain: Chain, expr, m):
        ctx, const = self._ctx, m[pats.w]
        weight = const.value.numpy()
        x = m[pats.x]
        name = self._name(const, weight, x)
        density = density_of(weight)
        shape = static_shape(x)
        if shape is None:
            return ctx.why(name, density, Decline.SYMBOLIC_SHAPE) or expr
        if [int(a) for a in m[pats.wt].attrs.axes] != [1, 0] or len(shape) != 2 or weight.ndim != 2:
            return ctx.why(name, density, Decline.LAYOUT) or expr
        if weight.dtype != np.float32 or str(x.ty.dtype) != "float32":
            return ctx.why(name, density, Decline.NON_FLOAT32) or expr
        ep = fold(pats, chain, m, weight)
        if ep is None:
            return ctx.why(name, density, Decline.NOT_FOLDABLE) or expr
        layer = LinearLayer(
            self._layer_name(name), x, shape[0], shape[1], weight.shape[0], weight, ep, self.int8.get(name)
        )
        out = self.family.strategies.linear.lower(ctx, layer)
        return expr if out is None else out

    def _conv(self, pats: LayerPatterns, chain: Chain, expr, m):
        ctx, const = self._ctx, m[pats.w]
        weight = const.value.numpy()
        name = self._name(const, weight, m[pats.x])
        density = density_of(weight)
        attrs = m[pats.conv].attrs
        if attrs.data_layout != "NCHW" or attrs.kernel_layout != "OIHW" or attrs.out_layout != "NCHW":
            return ctx.why(name, density, Decline.LAYOUT) or expr
        x = m[pats.x]
        shape = static_shape(x)
        if shape is None:
            return ctx.why(name, density, Decline.SYMBOLIC_SHAPE) or expr
        if weight.dtype != np.float32 or str(x.ty.dtype) != "float32":
            return ctx.why(name, density, Decline.NON_FLOAT32) or expr
        ep = fold(pats, chain, m, weight)
        if ep is None:
            return ctx.why(name, density, Decline.NOT_FOLDABLE) or expr
        layer = ConvLayer.of(self._layer_name(name), x, tuple(shape), weight, attrs, ep, self.int8.get(name))
        strategy = self.family.strategies.depthwise if layer.depthwise else self.family.strategies.conv
        out = strategy.lower(ctx, layer)
        return expr if out is None else out

    def _embedding(self, pats: LayerPatterns, expr, m):
        ctx, const = self._ctx, m[pats.w]
        weight = const.value.numpy()
        name = self._name(const, weight, m[pats.ids])
        density = density_of(weight)
        ids = m[pats.ids]
        shape = static_shape(ids)
        if shape is None:
            return ctx.why(name, density, Decline.SYMBOLIC_SHAPE) or expr
        if int(expr.attrs.axis) != 0 or weight.ndim != 2 or len(shape) != 1:
            return ctx.why(name, density, Decline.LAYOUT) or expr
        if weight.dtype != np.float32 or str(ids.ty.dtype) != "int32":
            return ctx.why(name, density, Decline.NON_FLOAT32) or expr
        layer = EmbeddingLayer(self._layer_name(name), ids, shape[0], weight, density)
        return self.family.strategies.embedding.lower(ctx, layer)

    def _matmul(self, pats: LayerPatterns, expr, m, var2val):
        a, b = m[pats.lhs], m[pats.rhs]
        sa, sb = static_shape(a), static_shape(b)
        if sa is None or sb is None:
            return expr  # symbolic shapes: TVM's generic lowering (no prunable layer to report on)
        dtype = str(a.ty.dtype)
        (scale_a, a), (scale_b, b) = peel_scale(a, var2val), peel_scale(b, var2val)
        layer = MatmulLayer(a, b, tuple(sa), tuple(sb), scale_a * scale_b, dtype)
        out = self.family.strategies.attention.lower(self._ctx, layer)
        return expr if out is None else out

"""The Relax rewrite driver: layers with constant weights become calls to the kernel family's kernels.

The driver matches each layer pattern (`patterns.py`: linear and conv2d with their bias, BatchNorm and
ReLU/ReLU6 epilogue, longest first; activation × activation matmuls), folds the epilogue (`epilogue.py`),
names the layer after the Program's parameter holding its weight, and hands a typed layer record to the
family's strategy for its kind (`strategies/`). A layer the driver or a strategy declines stays a Relax op
for TVM's generic lowering, and `Context.why` records the reason where it declines.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import rewrite_call

from cascc.targets import KernelCosts, Target

from . import cost
from .decision import Decision, DecisionKind, Decline, declined
from .epilogue import Epilogue, density_of, fold
from .patterns import Chain, LayerPatterns
from .strategies import ConvLayer, LinearLayer, MatmulLayer

OPAQUE = 8  # relay/relax OpPatternKind.kOpaque: FuseOps leaves the kernel alone


def weight_key(w: np.ndarray) -> str:
    """Identity of a weight by content: Relax constants carry no parameter names."""
    return hashlib.sha256(np.ascontiguousarray(w, dtype=np.float32).tobytes()).hexdigest()


def add_kernel(bb: relax.BlockBuilder, func: tvm.tirx.PrimFunc, symbol: str) -> tvm.ir.GlobalVar:
    """Add a kernel under a unique symbol (TVMScript names every generated function `kernel`), unfusable."""
    return bb.add_func(func.with_attr("global_symbol", symbol).with_attr("op_pattern", OPAQUE), symbol)


def symbol(name: str) -> str:
    """A kernel symbol prefix for a layer name."""
    return "cascc_" + "".join(ch if ch.isalnum() else "_" for ch in name)


@dataclass(frozen=True, eq=False)
class Candidate:
    """One kernel for one layer: its PrimFunc, constant arguments, activation input and output shapes."""

    kernel: str
    func: tvm.tirx.PrimFunc
    consts: tuple[np.ndarray, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


class Context:
    """What a strategy may use while lowering one module: the target, the BlockBuilder kernels go into, the
    parallel threshold, and decision recording (`choose` for a priced choice, `record`, `why` to decline)."""

    def __init__(self, target: Target, bb: relax.BlockBuilder, cores: int, keep_candidates: bool):
        self.target = target
        self.costs: KernelCosts = target.costs
        self.bb = bb
        self.cores = cores
        self.keep_candidates = keep_candidates  # keep both kernels of each layer (for `--measure`)
        self.decisions: dict[str, Decision] = {}
        self.candidates: dict[str, dict[str, Candidate]] = {}
        self.final: set[str] = set()  # layers a strategy has decided (a driver's decline never replaces them)

    @property
    def index(self) -> int:
        """How many layers have a decision so far (numbers kernels and unnamed layers)."""
        return len(self.decisions)

    def parallel(self, predicted_us: float) -> bool:
        return cost.parallel(self.costs, self.cores, predicted_us)

    def add_kernel(self, func: tvm.tirx.PrimFunc, symbol_: str) -> tvm.ir.GlobalVar:
        return add_kernel(self.bb, func, symbol_)

    def record(self, decision: Decision, candidates: Mapping[str, Candidate] | None = None) -> None:
        """Record a strategy's decision for a layer (and its candidates when measuring)."""
        self.decisions[decision.layer] = decision
        self.final.add(decision.layer)
        if self.keep_candidates and candidates is not None:
            self.candidates[decision.layer] = dict(candidates)

    def decided(self, name: str) -> bool:
        """Whether a strategy has already recorded a decision for this layer."""
        return name in self.final

    def why(self, name: str | None, density: float, decline: Decline) -> None:
        """Record that the layer stays with TVM's generic lowering, and why; returns None (the strategy's
        "not taken"). A later, shorter pattern may still take the layer (e.g. without an unfoldable
        epilogue): its decision replaces this one, and a decline never replaces a strategy's decision."""
        if name is not None and name not in self.final:
            self.decisions[name] = declined(name, density, decline)
        return None

    def choose(
        self,
        name: str,
        ep: Epilogue,
        choice: cost.Choice,
        sparse: Callable[[], Candidate],
        dense: Callable[[], Candidate],
    ) -> Candidate:
        """Build the chosen candidate, record the decision, and keep both candidates when measuring."""
        chosen = sparse() if choice.sparse else dense()
        decision = Decision(
            name,
            ep.density,
            chosen.kernel,
            choice.reason,
            round(choice.dense_us, 3),
            round(choice.sparse_us, 3),
            kind=DecisionKind.SPARSE if choice.sparse else DecisionKind.DENSE_CASCC,
            decline=None if choice.sparse else Decline.COST_MODEL,
        )
        both = None
        if self.keep_candidates:
            both = {
                "sparse": chosen if choice.sparse else sparse(),
                "dense": dense() if choice.sparse else chosen,
            }
        self.record(decision, both)
        return chosen

    def call(self, cand: Candidate, name: str, sparse: bool, activation) -> relax.Expr:
        """call_tir of a candidate kernel on the activation and its constants."""
        gv = self.add_kernel(cand.func, f"{symbol(name)}_{'sparse' if sparse else 'dense'}")
        args = [activation, *map(relax.const, cand.consts)]
        return relax.call_tir(gv, args, relax.TensorType(cand.out_shape, "float32"))


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
    ):
        from .family import family

        self.target = target
        self.family = family(target.kernels)
        # weight_key -> layer names in graph order (copies of one layer share a key, e.g. nn.TransformerEncoder);
        # the rewrite meets layers in graph order too, so each new weight constant takes the next name
        self.names = {key: deque(layer_names) for key, layer_names in names.items()}
        self.cores = cores
        self.keep_candidates = keep_candidates
        self.decisions: dict[str, Decision] = {}
        self.candidates: dict[str, dict[str, Candidate]] = {}

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        ctx = Context(self.target, relax.BlockBuilder(mod), self.cores, self.keep_candidates)
        self._ctx, self._named = ctx, {}
        pats = LayerPatterns()
        strategies = self.family.strategies
        main = mod["main"]
        for chain in pats.linear_chains:
            main = rewrite_call(chain.pattern, lambda e, m, c=chain: self._linear(pats, c, e, m), main)
        for chain in pats.conv_chains:
            main = rewrite_call(chain.pattern, lambda e, m, c=chain: self._conv(pats, c, e, m), main)
        if strategies.attention is not None:
            main = rewrite_call(pats.activation_matmul, lambda e, m: self._matmul(pats, e, m), main)
        self.decisions, self.candidates = ctx.decisions, ctx.candidates
        out = ctx.bb.get()
        out[out.get_global_var("main")] = main
        return relax.transform.DeadCodeElimination()(out)

    # ---- naming ----------------------------------------------------------------------------------------

    def _name(self, const, weight: np.ndarray) -> str | None:
        """The Program's name of the layer holding this weight constant (copies of one layer are named in
        graph order), remembered per constant; None for a constant no prunable layer holds."""
        if const not in self._named:
            queue = self.names.get(weight_key(weight))
            self._named[const] = (queue.popleft() if len(queue) > 1 else queue[0]) if queue else None
        return self._named[const]

    def _layer_name(self, name: str | None) -> str:
        return name if name is not None else f"layer_{self._ctx.index}"

    # ---- matching --------------------------------------------------------------------------------------

    def _linear(self, pats: LayerPatterns, chain: Chain, expr, m):
        ctx, const = self._ctx, m[pats.w]
        weight = const.value.numpy()
        name = self._name(const, weight)
        density = density_of(weight)
        x = m[pats.x]
        shape = _static_shape(x)
        if shape is None:
            return ctx.why(name, density, Decline.SYMBOLIC_SHAPE) or expr
        if [int(a) for a in m[pats.wt].attrs.axes] != [1, 0] or len(shape) != 2 or weight.ndim != 2:
            return ctx.why(name, density, Decline.LAYOUT) or expr
        if weight.dtype != np.float32 or str(x.ty.dtype) != "float32":
            return ctx.why(name, density, Decline.NON_FLOAT32) or expr
        ep = fold(pats, chain, m, weight)
        if ep is None:
            return ctx.why(name, density, Decline.NOT_FOLDABLE) or expr
        layer = LinearLayer(self._layer_name(name), x, shape[0], shape[1], weight.shape[0], weight, ep)
        out = self.family.strategies.linear.lower(ctx, layer)
        return expr if out is None else out

    def _conv(self, pats: LayerPatterns, chain: Chain, expr, m):
        ctx, const = self._ctx, m[pats.w]
        weight = const.value.numpy()
        name = self._name(const, weight)
        density = density_of(weight)
        attrs = m[pats.conv].attrs
        if attrs.data_layout != "NCHW" or attrs.kernel_layout != "OIHW" or attrs.out_layout != "NCHW":
            return ctx.why(name, density, Decline.LAYOUT) or expr
        x = m[pats.x]
        shape = _static_shape(x)
        if shape is None:
            return ctx.why(name, density, Decline.SYMBOLIC_SHAPE) or expr
        if weight.dtype != np.float32 or str(x.ty.dtype) != "float32":
            return ctx.why(name, density, Decline.NON_FLOAT32) or expr
        ep = fold(pats, chain, m, weight)
        if ep is None:
            return ctx.why(name, density, Decline.NOT_FOLDABLE) or expr
        layer = ConvLayer.of(self._layer_name(name), x, tuple(shape), weight, attrs, ep)
        strategy = self.family.strategies.depthwise if layer.depthwise else self.family.strategies.conv
        out = strategy.lower(ctx, layer)
        return expr if out is None else out

    def _matmul(self, pats: LayerPatterns, expr, m):
        a, b = m[pats.lhs], m[pats.rhs]
        sa, sb = _static_shape(a), _static_shape(b)
        if sa is None or sb is None:
            return expr  # symbolic shapes: TVM's generic lowering (no prunable layer to report on)
        out = self.family.strategies.attention.lower(self._ctx, MatmulLayer(a, b, tuple(sa), tuple(sb)))
        return expr if out is None else out


def _static_shape(x) -> list[int] | None:
    """A tensor's static shape, or None where it is symbolic or unknown."""
    try:
        return [int(d) for d in x.ty.shape]
    except (TypeError, AttributeError):
        return None

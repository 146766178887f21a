"""What the rewrite driver hands a strategy: the `Context` of one module's lowering (target, BlockBuilder,
decision recording) and the `Candidate` kernels strategies build."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from cascc.targets import KernelCosts, Target

from . import cost
from .decision import Decision, DecisionKind, Decline, declined
from .epilogue import Epilogue


def static_shape(expr) -> list[int] | None:
    """A Relax expression's static shape, or None where it is symbolic or unknown."""
    try:
        return [int(d) for d in expr.ty.shape]
    except (TypeError, ValueError, AttributeError):
        return None


OPAQUE = 8  # relay/relax OpPatternKind.kOpaque: FuseOps leaves the kernel alone


def weight_key(w: np.ndarray) -> str:
    """Identity of a weight by content: Relax constants carry no parameter names."""
    return hashlib.sha256(np.ascontiguousarray(w, dtype=np.float32).tobytes()).hexdigest()


def add_kernel(bb: relax.BlockBuilder, func: tvm.tirx.PrimFunc, symbol: str) -> tvm.ir.GlobalVar:
    """Add a kernel, unfusable, named after its first user. Layers of one shape class get structurally
    equal kernels (weights and indices are arguments), and the BlockBuilder returns the first one's
    GlobalVar for each later one, so the library holds one copy of their code; TVM gives the kernel its
    symbol from the GlobalVar when it builds."""
    func = func.without_attr("global_symbol") if func.attrs and "global_symbol" in func.attrs else func
    return bb.add_func(func.with_attr("op_pattern", OPAQUE), symbol)


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
    in_dtype: str = "float32"
    precision: str = "fp32"


class Context:
    """What a strategy may use while lowering one module: the target, the BlockBuilder kernels go into, the
    parallel threshold, and decision recording (`choose` for a priced choice, `record`, `why` to decline)."""

    def __init__(
        self, target: Target, bb: relax.BlockBuilder, cores: int, keep_candidates: bool, dot: str = "widen"
    ):
        self.target = target
        self.dot = dot  # the int8 dot product the CPU offers (kernels/int8.py DOTS)
        self.costs: KernelCosts = target.costs
        self.bb = bb
        self.cores = cores
        self.keep_candidates = keep_candidates  # keep both kernels of each layer (for `--measure`)
        self.decisions: dict[str, Decision] = {}
        self.candidates: dict[str, dict[str, Candidate]] = {}
        self.final: set[str] = set()  # layers a strategy has decided (a driver's decline never replaces them)
        self.operands: dict = {}  # (activation, layout) -> the wide operand built from it, shared by its readers

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
            precision=chosen.precision,
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

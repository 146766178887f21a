"""The Target record: plain data, no TVM import. What differs between targets is a field, never a branch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class KernelCosts:
    """Per-target cost model for linear kernels, fitted to single-thread medians on a reference CPU.

    dense: ns per (K · padded N) weight pass, paid once per batch tile (weights are streamed again for
    every `dense_batch_tile` rows of x). sparse: ns per stored weight (padding included), per row of x, for
    each narrow format: tiled ELL gathering x by per-lane column (`sparse_rows` rows per tile), tiled ELL
    broadcasting the column a tile's rows share (r×1 blocks; per tile height). The narrow constants are
    about twice the warm-cache times of a 1024×1024 layer (x86: gather 0.25, broadcast 0.048/0.058/0.098
    ns), as the dense one is, so the choice among them keeps the measured order.

    `format_costs` tunes a format that declares its own price table (e.g. `bsr.1xC` in lower/formats/bsr.py):
    (format name, table) pairs; a format absent here uses its module's default, so adding a format needs no
    field here.
    """

    dense_ns_per_weight: float = 0.1
    dense_batch_tile: int = 4
    dense_tile: int = 64
    gather_ns_per_lane: float = 0.5
    broadcast_ns_per_lane: tuple[tuple[int, float], ...] = ((16, 0.1), (8, 0.12), (4, 0.2))  # (rows, ns)
    sparse_rows: int = 16
    sparse_unroll: int = 4
    # wide operand (conv pixels, tokens, batch ≥ wide_min_batch): ns per MAC (dense) or per stored weight
    # and column (sparse tiled-ELL with `wide_rows` rows per tile)
    wide_min_batch: int = 8
    wide_rows: int = 8
    wide_lanes: int = 32
    # the dense wide GEMM's register tile (rows, lanes) for layers with at least that many output rows:
    # 16×16 was 5–20% faster than 8×32 on ResNet-20's and MobileNetV2's shapes (slower below 16 rows)
    wide_dense_tile: tuple[int, int] = (16, 16)
    wide_dense_ns_per_mac: float = 0.014
    wide_sparse_ns_per_mac: float = 0.043
    # a column shared by a tile's rows (r×1 blocks) loads each operand vector once for all of them: 4.5 vs
    # 6.6 µs on a 64×576 weight at 10% density over 64 pixels, 5.8 vs 9.7 µs on 16×144 over 1024
    wide_shared_ns_per_mac: float = 0.029
    # sparse must beat dense by this factor to be chosen: a margin for the model's error
    margin: float = 1.25
    # launching a parallel loop costs ~4 µs even on one thread: kernels predicted below this run serially
    parallel_min_us: float = 60.0
    depthwise_ns_per_mac: float = 0.12
    # the sparse depthwise kernel in dense-tap units: 1.7 per stored tap + 3 per channel (fitted on 64×25×5,
    # 72×24×24 and 96×12×12 at densities 0.1–0.5: sparse pays off below ~27% with the margin)
    depthwise_sparse_tap: float = 1.7
    depthwise_sparse_channel: float = 3.0
    # stride-1 same-size depthwise convs up to this many pixels use the flat kernel (faster on small images,
    # 5% slower than the zero-bordered grid on 48×48: measured)
    depthwise_same_max_pixels: int = 1024
    # stride-1 k×k convs may read the padded image in place instead of through im2col (strategies/conv.py _direct_pays)
    direct_conv: bool = True
    # copies (im2col, pad, crop): ns per byte written (an im2col of 147 KB took 4.5 µs)
    copy_ns_per_byte: float = 0.03
    # past `cache_bytes` an operand lives in memory: copies write it at `memory_ns_per_byte` (ResNet-18's
    # 7.4 MB stem im2col took 0.7 ms) and a wide kernel reads it again for every row tile
    cache_bytes: int = 4 << 20
    memory_ns_per_byte: float = 0.1
    # GPU (kernels="gpu"): a layer's time is its bytes over the effective memory bandwidth plus one launch;
    # the CSR kernel's scattered activation reads count `gpu_gather_penalty` times
    gpu_bytes_per_ns: float = 1500.0
    gpu_gather_penalty: float = 2.0
    gpu_launch_us: float = 3.0
    format_costs: tuple[tuple[str, Any], ...] = ()

    def format_cost(self, name: str, default: Any) -> Any:
        """The target's price table for format `name`, else the format's own `default`."""
        return dict(self.format_costs).get(name, default)


@dataclass(frozen=True)
class Target:
    """A compilation target.

    `tvm_target` is TVM's JSON target dict; with `detect_host` the host CPU (`mcpu`, core count) is filled in
    at lowering. `cross_compiler` names the C compiler that links the shared library (None: host compiler).
    `runs_on_host` says whether a build machine can execute the artifact (a `device` other than "cpu" also
    runs where that device is present). `schedule_rules` names cascc's schedule rules in the order they are
    tried (a rule that does not apply passes). `backend` names TVM's Relax backend whose dispatch, lowering
    and finalization passes the pipeline uses; `kernels` the family of cascc kernels the layer rewrite emits
    ("cpu" or "gpu", a name in `cascc.lower.family.FAMILIES`). `cpu_option` is the TVM target key `--cpu`
    sets, and `cpu_choices`, when given, the values it accepts (LLVM targets check `--cpu` against LLVM's own
    list).

    Vector facts the CPU kernels are sized from (no kernel hard-codes a width): `vector_lanes` fp32 lanes per
    vector register and `vector_registers` registers (the register file a tile's accumulators must fit in);
    `kernel_lanes`, the width of cascc's row and conv kernels (row reductions, conv chunks, plane fills; the
    attention matmul tries 2× then 1× it), one register unless a target says otherwise; `cache_line_bytes`,
    the line the wide operand's pitch is laid out in. `lacking` replaces fields for a CPU without a feature.
    """

    name: str
    description: str
    tvm_target: Mapping[str, Any]
    device: str = "cpu"
    detect_host: bool = False
    cross_compiler: str | None = None
    runs_on_host: bool = True
    schedule_rules: tuple[str, ...] = ()
    costs: KernelCosts = field(default_factory=KernelCosts)
    backend: str = "cpu_generic"
    kernels: str = "cpu"
    cpu_option: str = "mcpu"
    cpu_choices: tuple[str, ...] = ()
    notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    vector_lanes: int = 16
    vector_registers: int = 32
    kernel_lanes: int | None = None  # None: one vector register (`vector_lanes`)
    cache_line_bytes: int = 64
    # (LLVM CPU feature, field overrides): where the target CPU lacks the feature, the fields take these
    # values (`cascc.lower.target.for_cpu`; a mapping for `costs` replaces those KernelCosts fields only),
    # e.g. x86's tiles for AVX2 without AVX-512
    lacking: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    # the int8 dot product of cascc's CPU kernels (kernels/int8.py DOTS): "vnni", "pmaddwd" or "widen"
    int8_dot: str = "widen"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tvm_target", MappingProxyType(dict(self.tvm_target)))
        if self.kernel_lanes is None:
            object.__setattr__(self, "kernel_lanes", self.vector_lanes)

    @property
    def line_floats(self) -> int:
        """fp32 values per cache line."""
        return self.cache_line_bytes // 4

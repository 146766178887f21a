"""64-bit Arm Linux (aarch64) with NEON, cross-linked with Debian's gcc-aarch64-linux-gnu.

Kernel tiles are sized for 32 128-bit NEON registers (4 fp32 lanes): wide kernels keep 4 rows × 16 lanes
(16 registers) of accumulators. The cost constants are reasoned from the x86 fit, not measured on a
board: a 1×4 block is one NEON vector of x, so it sits with the 4-lane broadcast, far below the gather.
"""

from .base import KernelCosts, Target

TARGET = Target(
    name="arm64",
    description="aarch64 Linux with NEON (e.g. Raspberry Pi 4/5, Jetson CPU); --cpu cortex-a72 etc.",
    tvm_target={"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon"], "num-cores": 4},
    device="cpu",
    detect_host=False,
    cross_compiler="aarch64-linux-gnu-gcc",
    runs_on_host=False,
    schedule_rules=("cpu.gemv", "cpu.reduction", "cpu.generic", "cpu.extern"),
    costs=KernelCosts(
        dense_tile=16,
        sparse_rows=8,
        wide_rows=4,
        wide_lanes=16,
        wide_dense_tile=(4, 16),
        dense_ns_per_weight=0.5,
        gather_ns_per_lane=2.0,
        broadcast_ns_per_lane=((8, 0.6), (4, 0.7)),
        format_costs=(("bsr.1xC", ((4, 8, 0.7),)),),  # (width, rows, ns): 1×4 blocks, 8-row tiles
        wide_dense_ns_per_mac=0.06,
        wide_sparse_ns_per_mac=0.18,
        wide_shared_ns_per_mac=0.12,
    ),
    notes={"install": "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"},
    # NEON: 4 fp32 lanes in each of 32 128-bit registers. The row and conv kernels keep x86's 16-lane
    # width (four NEON registers per vector op, which LLVM splits), as they always have: not yet tuned on a
    # board, so the width is this field to tune, not a constant in the kernels
    vector_lanes=4,
    vector_registers=32,
    kernel_lanes=16,
)

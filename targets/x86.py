"""x86-64 Linux host: LLVM with the host's CPU features (AVX2 / AVX-512) and all its cores.

Tiles are sized for AVX-512 (32 zmm registers of 16 fp32 lanes). On a CPU without AVX-512 the wide kernels
take AVX2's (16 ymm registers of 8 lanes): the dense GEMM's 16×16 tile needs 32 ymm accumulators and
spills. Measured on a Zen 3 core, 1 thread, ResNet-20 at batch 1 against onnxruntime in the same run:
4 rows × 16 lanes raised dense from 0.41× to 0.78× (8×16: 0.68×), and 4-row 16-lane sparse tiles at 90%
from 1.92× to 2.21× (8-row 8-lane: 1.72×). The ns constants stay the AVX-512 fit.
"""

from .base import Target

AVX2_COSTS = {"wide_dense_tile": (4, 16), "wide_lanes": 16, "wide_rows": 4}  # KernelCosts fields

TARGET = Target(
    name="x86",
    description="x86-64 Linux, this machine's CPU features detected (mcpu, cores)",
    tvm_target={"kind": "llvm", "mtriple": "x86_64-linux-gnu"},
    device="cpu",
    detect_host=True,
    runs_on_host=True,
    schedule_rules=("cpu.gemv", "cpu.reduction", "cpu.generic", "cpu.extern"),
    # AVX-512: 16 fp32 lanes in each of 32 zmm registers (kernel_lanes: one register)
    vector_lanes=16,
    vector_registers=32,
    # int8: AVX512-VNNI's vpdpbusd, else AVX2's vpmaddwd, else a widening multiply
    int8_dot="vnni",
    # AVX2 only: 8 lanes in 16 ymm registers; the row and conv kernels keep 16 lanes (measured no slower)
    lacking=(
        ("avx512f", {"vector_lanes": 8, "vector_registers": 16, "kernel_lanes": 16, "costs": AVX2_COSTS}),
        ("avx512vnni", {"int8_dot": "pmaddwd"}),
        ("avx2", {"int8_dot": "widen"}),  # after the VNNI entry: a CPU lacking both ends at widen
    ),
)

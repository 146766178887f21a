"""x86-64 Linux host: LLVM with the host's CPU features (AVX2 / AVX-512) and all its cores."""

from .base import Target

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
)

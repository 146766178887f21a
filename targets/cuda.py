"""NVIDIA GPUs through CUDA: dlight GPU schedules for dense ops, cascc's CSR kernel (one thread per output
element, rows of the sparse weight walked in registers) for sparse linear layers.

`--cpu`/`--arch` selects the compute capability (sm_80 = A100 by default). Built without a GPU, the library
embeds the CUDA kernels as source that TVM compiles when the artifact is loaded on the GPU machine (the
manifest says which form it holds). The cost constants are reasoned from bandwidth, not measured.
"""

from .base import KernelCosts, Target

ARCHS = ("sm_70", "sm_72", "sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90", "sm_90a", "sm_100", "sm_120")

TARGET = Target(
    name="cuda",
    description="NVIDIA GPU (CUDA); --cpu/--arch sm_80 (default), sm_86, sm_89, sm_90, …",
    tvm_target={"kind": "cuda", "arch": "sm_80", "host": {"kind": "llvm", "mtriple": "x86_64-linux-gnu"}},
    device="cuda",
    runs_on_host=False,
    schedule_rules=(
        "gpu.matmul",
        "gpu.gemv",
        "gpu.reduction",
        "gpu.general_reduction",
        "gpu.fallback",
        "gpu.extern",
    ),
    costs=KernelCosts(),
    backend="cuda",
    kernels="gpu",
    cpu_option="arch",
    cpu_choices=ARCHS,
    notes={"install": "CUDA toolkit (nvcc) on the build machine; a CUDA driver on the device"},
)

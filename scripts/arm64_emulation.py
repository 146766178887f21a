"""Run an arm64 cascc artifact under qemu-aarch64 user emulation and compare it with the x86 build.

Builds (once, cached) an aarch64 Debian userland with Python 3.11 and the aarch64 apache-tvm wheel — no
emulated installer runs: mmdebstrap extracts the packages, pip unpacks the wheels for the aarch64 platform.
Then compiles MODEL for x86 and for arm64 with the same recipe, runs the arm64 library under qemu on the
artifact's sample input and checks its outputs against the x86 library run here and against torch.

    python scripts/arm64_emulation.py examples/digits.py:cnn --sparsity 0.8 [--cpu cortex-a72]
    python scripts/arm64_emulation.py benchmarks/zoo.py:mlp --sparsity 0.9 --criterion block --block 1x4

Host needs (Debian): gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static mmdebstrap. Timings under
emulation mean nothing for the board (~20× slower); this checks correctness only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WHEELS = ("apache-tvm==0.27.0.post1", "apache-tvm-ffi", "numpy", "ml_dtypes", "typing_extensions")
PLATFORM = ["--platform", "manylinux_2_28_aarch64", "--platform", "manylinux2014_aarch64"]
PLATFORM += [
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--abi",
    "abi3",
    "--abi",
    "none",
]
HOST_TOOLS = ("aarch64-linux-gnu-gcc", "qemu-aarch64-static", "mmdebstrap")

# Runs inside the emulated userland: only the TVM runtime and numpy, no cascc.
RUNNER = """
import sys
import numpy as np
import tvm
from tvm.runtime.vm import VirtualMachine  # the runtime alone: the compiler library is not installed
library, inputs, outputs = sys.argv[1:4]
vm = VirtualMachine(tvm.runtime.load_module(library), tvm.cpu())
data = np.load(inputs)
args = [tvm.runtime.tensor(data[f"input_{i}"]) for i in range(len(data.files))]
result = vm["main"](*args)
flat = [result] if hasattr(result, "numpy") else list(result)
np.savez(outputs, **{f"output_{i}": t.numpy() for i, t in enumerate(flat)})
"""


def userland(cache: Path) -> Path:
    """The cached aarch64 root filesystem with Python 3.11 and the TVM runtime under /opt/pylibs."""
    rootfs = cache / "rootfs"
    if (rootfs / "opt" / "pylibs" / "tvm").is_dir():
        return rootfs
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    staging = cache / "rootfs.partial"
    subprocess.run(
        ["mmdebstrap", "--variant=extract", "--arch=arm64", "--include=python3.11-minimal,libpython3.11-stdlib,libstdc++6",
         "bookworm", str(staging)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wheels = cache / "wheels"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "download", "-q", "--no-deps", "--only-binary=:all:", *PLATFORM, "-d", str(wheels), *WHEELS],
        check=True,
    )
    subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-index", "--only-binary=:all:", *PLATFORM,
         "--target", str(staging / "opt" / "pylibs"), *map(str, sorted(wheels.glob("*.whl")))],
        check=True,
    )  # fmt: skip
    (staging / "opt" / "pylibs" / "tvm" / "lib" / "libtvm_compiler.so").unlink(
        missing_ok=True
    )  # 229 MB, unused
    shutil.rmtree(wheels)
    staging.rename(rootfs)
    return rootfs


def run_emulated(rootfs: Path, cpu: str, library: Path, inputs: Path, outputs: Path, work: Path) -> None:
    runner = work / "run.py"
    runner.write_text(RUNNER)
    subprocess.run(
        ["qemu-aarch64-static", "-L", str(rootfs), "-E", "PYTHONPATH=/opt/pylibs", "-E", "TVM_USE_RUNTIME_LIB=1",
         str(rootfs / "usr" / "bin" / "python3.11"), str(runner), str(library), str(inputs), str(outputs)],
        check=True, env={**os.environ, "QEMU_CPU": cpu},
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="file.py:factory, .pt2 or .onnx")
    ap.add_argument("--sparsity", type=float, default=0.0)
    ap.add_argument("--allocator", default="uniform")
    ap.add_argument(
        "--criterion", default="magnitude", help="pruning criterion, as `cascc compile --criterion`"
    )
    ap.add_argument("--block", default="4x1", help="ROWSxCOLS for --criterion block")
    ap.add_argument("--cpu", default="cortex-a72", help="-mcpu of the arm64 build and qemu's CPU model")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "cascc" / "arm64-userland")
    args = ap.parse_args(argv)
    missing = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    if missing:
        print(f"error: missing host tools {', '.join(missing)}: apt-get install gcc-aarch64-linux-gnu "
              "libc6-dev-arm64-cross qemu-user-static mmdebstrap", file=sys.stderr)  # fmt: skip
        return 2

    import cascc
    from cascc.files import write_npz
    from cascc.runtime.artifact import open_artifact

    timings = {}
    start = time.perf_counter()
    rootfs = userland(args.cache)
    timings["userland (cached after the first run)"] = time.perf_counter() - start
    recipe = cascc.Recipe(
        sparsity=args.sparsity, allocator=args.allocator, criterion=args.criterion, block=args.block
    )
    with tempfile.TemporaryDirectory(prefix="cascc-arm64-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        cascc.compile(args.model, target="arm64", cpu=args.cpu, recipe=recipe, out=work / "arm64")
        cascc.compile(args.model, target="x86", recipe=recipe, out=work / "x86")
        timings["compile x86 + arm64"] = time.perf_counter() - start
        arm = open_artifact(work / "arm64")
        inputs, expected = arm.selftest_data()
        write_npz(work / "inputs.npz", {f"input_{i}": x for i, x in enumerate(inputs)})
        start = time.perf_counter()
        run_emulated(rootfs, args.cpu, arm.library, work / "inputs.npz", work / "outputs.npz", work)
        timings["run under qemu-aarch64"] = time.perf_counter() - start
        with np.load(work / "outputs.npz") as data:
            emulated = [data[f"output_{i}"] for i in range(len(data.files))]
        native = cascc.run(work / "x86", inputs)
    vs_x86 = max(float(np.max(np.abs(a - b))) for a, b in zip(emulated, native, strict=True))
    vs_torch = max(float(np.max(np.abs(a - b))) for a, b in zip(emulated, expected, strict=True))
    for step, seconds in timings.items():
        print(f"{step}: {seconds:.1f} s")
    print(f"arm64 under qemu vs x86 build: max abs difference {vs_x86:.3g}")
    print(f"arm64 under qemu vs torch eager: max abs difference {vs_torch:.3g}")
    same = len(emulated) == len(native) and all(
        a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5)
        for a, b in zip(emulated, native, strict=False)
    )
    print("ok" if same else "MISMATCH")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

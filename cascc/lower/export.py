"""Link a compiled executable into a shared library and describe the device code it carries."""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
from pathlib import Path
from typing import Any

from cascc.errors import ArtifactError, CasccError, LoweringError, first_paragraph
from cascc.targets import Target


def export_library(executable: Any, target: Target, path: Path) -> None:
    """Link the executable into a shared library, with the target's cross compiler if it has one."""
    import tvm

    # Link without debug sections: LLVM emits DWARF for every kernel, which was half of a ResNet-18
    # library (.debug_loc alone 445 kB), and a deployed library has no use for it.
    options: dict[str, Any] = {"options": ["-Wl,--strip-debug"]}
    if target.cross_compiler:
        if shutil.which(target.cross_compiler) is None:
            raise CasccError(
                target.name,
                f"the {target.name} target links with {target.cross_compiler}, which is not installed",
                f"install it ({target.notes.get('install', 'see the README')})",
            )
        options["fcompile"] = tvm.support.cc.cross_compiler(target.cross_compiler)
    try:
        executable.export_library(str(path), **options)
    except Exception as exc:
        raise LoweringError(
            path.name,
            f"linking the {target.name} shared library failed: {first_paragraph(exc)}",
            f"check that {target.cross_compiler or 'the host C compiler'} and its C library "
            f"are installed ({target.notes.get('install', 'gcc')})",
        ) from exc


# A device kernel's entry point in CUDA C (TVM may put launch bounds between `void` and the name).
_KERNEL = re.compile(r'extern "C" __global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(')
_SOURCE_START = b"\n#ifdef __CUDACC_RTC__"


def device_code(executable: Any) -> list[dict[str, Any]]:
    """What the library carries for devices other than the host: per device module its kind, whether it is
    source (compiled when the artifact is loaded on the device) or a binary, its kernels and a hash."""
    found = []
    pending = list(executable.mod.imports)
    while pending:
        module = pending.pop()
        pending.extend(module.imports)
        if module.kind in ("llvm", "c", "static_library"):
            continue
        source = str(module.inspect_source())
        kernels = sorted(set(_KERNEL.findall(source)))
        found.append(
            {
                "kind": module.kind,
                "format": "source" if kernels else "binary",
                "kernels": kernels,
                "sha256": hashlib.sha256(source.encode()).hexdigest(),
            }
        )
    return sorted(found, key=lambda d: d["kind"])


def embedded_cuda_source(library: Path) -> str:
    """The CUDA C source a CUDA artifact's library embeds, read from the file (no CUDA runtime needed).

    TVM serializes it as a length-prefixed string (8-byte little-endian length) starting with NVRTC's
    preamble guard; raises ArtifactError if the library holds none."""
    blob = Path(library).read_bytes()
    start = blob.find(_SOURCE_START)
    if start < 8:
        raise ArtifactError(library, "holds no CUDA source module", "compile it with --target cuda")
    (length,) = struct.unpack("<Q", blob[start - 8 : start])
    return blob[start : start + length].decode()


def section_sizes(library: Path) -> dict[str, int]:
    """Bytes per section of an ELF64 little-endian shared library (x86-64, aarch64): `.text` is the code,
    `.rodata` holds TVM's serialized module with its constants. Empty if the file is not such an ELF."""
    blob = Path(library).read_bytes()
    if blob[:4] != b"\x7fELF" or blob[4] != 2 or blob[5] != 1:
        return {}
    (shoff,) = struct.unpack_from("<Q", blob, 0x28)
    entsize, count, names_index = struct.unpack_from("<HHH", blob, 0x3A)
    if not shoff or entsize < 64 or shoff + count * entsize > len(blob) or names_index >= count:
        return {}
    headers = [struct.unpack_from("<IIQQQQ", blob, shoff + i * entsize) for i in range(count)]
    names_at = headers[names_index][4]

    def name(offset: int) -> str:
        start = names_at + offset
        return blob[start : blob.index(b"\0", start)].decode(errors="replace")

    return {name(h[0]): h[5] for h in headers if h[0]}

"""The artifact manifest's schema, checked field by field before any field is used.

An artifact is untrusted input: its manifest may have been edited by hand or by an attacker. `validate`
checks the versioned `format`, every field's type and range, and that the files it lists are plain names
inside the artifact (no paths, no links), so a later `manifest[...]` never raises KeyError/TypeError and
never reads outside the directory. A failure names the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ArtifactError

FORMAT_VERSION = 2  # 2: two self-test cases and a tolerance from the accumulation depth
LIBRARY = "model.so"
SELFTEST = "selftest.npz"
FILES = frozenset({LIBRARY, SELFTEST})  # exactly the files an artifact holds besides its manifest
DEVICES = frozenset({"cpu", "cuda"})
DTYPES = frozenset(
    {"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"}
)
MAX_DIMS = 8
MAX_ELEMENTS = 1 << 31  # per tensor: a signature past this is refused before anything is allocated
MAX_DEPTH = 10**9  # accumulation depth: rtol stays below ~0.12
SHA256 = re.compile(r"[0-9a-f]{64}")

Check = Callable[[Any], bool]


def _int(lo: int = 0, hi: int = 2**63 - 1) -> Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number(lo: float = -math.inf, hi: float = math.inf) -> Check:
    return lambda v: (
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
    )


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _optional(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _list(check: Check) -> Check:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _record(fields: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    """A dict with exactly these fields (plus the optional ones), each passing its check."""

    def check(v: Any) -> bool:
        if not isinstance(v, dict) or not set(fields) <= set(v) <= set(fields) | set(optional or {}):
            return False
        return all(c(v[k]) for k, c in {**fields, **(optional or {})}.items() if k in v)

    return check


def _tensor_spec(v: Any) -> bool:
    if not _record({"name": _str, "shape": _list(_int(0, MAX_ELEMENTS)), "dtype": DTYPES.__contains__})(v):
        return False
    return len(v["shape"]) <= MAX_DIMS and math.prod(v["shape"]) <= MAX_ELEMENTS


_LAYER = _record(
    {
        "name": _str,
        "kind": _str,
        "shape": _list(_int()),
        "weights": _int(),
        "nonzero": _int(),
        "density": _number(0.0, 1.0),
        "kernel": _optional(_str),
        "reason": _optional(_str),
        "dense_us": _optional(_number(0.0)),
        "sparse_us": _optional(_number(0.0)),
    },
    {
        "measured_us": lambda v: isinstance(v, dict) and all(_number(0.0)(x) for x in v.values()),
        "kernel_kind": _optional(_str),
        "decline": _optional(_str),
        "precision": ("fp32", "int8", "bf16").__contains__,
        "precision_reason": _str,
    },
)

# field → check, for the top level and the nested records whose contents the code reads
TOP_LEVEL: dict[str, Check] = {
    "versions": lambda v: isinstance(v, dict) and all(_str(x) for x in v.values()),
    "target": _record(
        {"name": _str, "tvm": lambda v: isinstance(v, dict), "device": DEVICES.__contains__},
        {"device_code": _list(lambda v: isinstance(v, dict))},
    ),
    "inputs": lambda v: _list(_tensor_spec)(v) and len(v) > 0,
    "outputs": lambda v: _list(_tensor_spec)(v) and len(v) > 0,
    "source": _record({"model": _str, "frontend": _str, "seed": _int(0, 2**63 - 1)}),
    "passes": _list(_record({"name": _str, "options": lambda v: isinstance(v, dict)})),
    "layers": _list(_LAYER),
    "selftest": _record(
        {
            "file": SELFTEST.__eq__,
            "cases": _int(1, 8),
            "rtol": _number(0.0, 1.0),
            "atol": _list(_number(0.0)),
            "accumulation_depth": _int(1, MAX_DEPTH),
        }
    ),
    "files": lambda v: (
        isinstance(v, dict)
        and all(
            _record({"bytes": _int(), "sha256": lambda s: _str(s) and SHA256.fullmatch(s)})(f)
            for f in v.values()
        )
    ),
}
OPTIONAL = {
    "evaluation": lambda v: isinstance(v, dict),
    # bytes of the library, its code and its constants, and its kernel count (written since format 2)
    "size": _record({"library": _int(), "code": _int(), "weights": _int(), "kernels": _int()}),
}


def validate(manifest: Any, where: str) -> Mapping[str, Any]:
    """`manifest` if it follows the schema of this cascc's format, else an ArtifactError naming the field."""

    def bad(problem: str) -> ArtifactError:
        return ArtifactError(where, f"invalid manifest: {problem}", "recompile the artifact with this cascc")

    if not isinstance(manifest, dict):
        raise bad("it is not a JSON object")
    version = manifest.get("format")
    if version != FORMAT_VERSION:
        raise bad(f"format {version!r}, this cascc reads format {FORMAT_VERSION}")
    missing = sorted(set(TOP_LEVEL) - set(manifest))
    unknown = sorted(set(manifest) - set(TOP_LEVEL) - set(OPTIONAL) - {"format"})
    if missing or unknown:
        raise bad(f"missing {', '.join(missing) or 'nothing'}; unknown {', '.join(unknown) or 'nothing'}")
    for key, check in {**TOP_LEVEL, **OPTIONAL}.items():
        if key in manifest and not check(manifest[key]):
            raise bad(f"field {key!r} has the wrong type or a value out of range")
    files = set(manifest["files"])
    if files != FILES:
        raise bad(f"it lists files {sorted(files)}, an artifact holds exactly {sorted(FILES)}")
    if len(manifest["selftest"]["atol"]) != len(manifest["outputs"]):
        raise bad("selftest.atol does not have one entry per output")
    from ..targets import TARGETS

    target = TARGETS.get(manifest["target"]["name"])
    if target is None:
        raise bad(f"unknown target {manifest['target']['name']!r}")
    if manifest["target"]["device"] != target.device:
        raise bad(f"target {target.name} runs on {target.device}, not {manifest['target']['device']!r}")
    return manifest

"""Hostile and broken inputs for the fuzz suite: each payload, if ever executed, writes a marker file."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path


class Payload:
    """Unpickling this object creates `marker` (it calls open(marker, 'w'))."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def payload_bytes(marker: Path) -> bytes:
    return pickle.dumps(Payload(marker))


def rewrite_zip(src: Path, dst: Path, edit) -> Path:
    """Copy the zip `src` to `dst`, passing each (name, bytes) through `edit`, which returns new bytes, None
    to drop the entry, or a dict of entries to write instead."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is None:
                continue
            for name, content in data.items() if isinstance(data, dict) else [(info.filename, data)]:
                zout.writestr(name, content)
    return dst


def pickled_sample_inputs(src: Path, dst: Path, marker: Path) -> Path:
    """torch retries a failed weights-only load of the sample inputs with full unpickling."""
    return rewrite_zip(src, dst, lambda n, b: payload_bytes(marker) if "sample_inputs" in n else b)


def pickled_weight(src: Path, dst: Path, marker: Path) -> Path:
    """A weight marked `use_pickle`: torch loads it with weights_only=False."""

    def edit(name, data):
        if name.endswith("weights_config.json"):
            config = json.loads(data)
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True
            return json.dumps(config).encode()
        if name.endswith("weights/" + "weight_0"):
            return payload_bytes(marker)
        return data

    return rewrite_zip(src, dst, edit)


def pickled_constant(src: Path, dst: Path, marker: Path) -> Path:
    """An opaque-object constant: torch loads it with pickle.loads."""

    def edit(name, data):
        if name.endswith("constants_config.json"):
            config = {
                "config": {
                    "evil": {
                        "path_name": "opaque_obj_0",
                        "is_param": False,
                        "use_pickle": True,
                        "tensor_meta": None,
                    }
                }
            }
            prefix = name.rsplit("/", 1)[0]
            return {name: json.dumps(config).encode(), f"{prefix}/opaque_obj_0": payload_bytes(marker)}
        return data

    return rewrite_zip(src, dst, edit)


def foreign_target(src: Path, dst: Path, marker: Path) -> Path:
    """A graph node whose target resolves through torch's namespace to os.system."""

    def edit(name, data):
        if name.endswith("models/model.json"):
            text = data.decode()
            return text.replace('"torch.ops.aten.linear.default"', '"torch.os.system"', 1).encode()
        return data

    return rewrite_zip(src, dst, edit)


def guard_code(src: Path, dst: Path, marker: Path) -> Path:
    """An input guard: torch compiles the archive's guard strings into Python when it unlifts the program."""

    def edit(name, data):
        if name.endswith("models/model.json"):
            program = json.loads(data)
            program["guards_code"] = [f"open({str(marker)!r}, 'w') is not None"]
            return json.dumps(program).encode()
        return data

    return rewrite_zip(src, dst, edit)


HOSTILE_PT2 = {
    "guard code": guard_code,
    "pickled sample inputs": pickled_sample_inputs,
    "pickled weight": pickled_weight,
    "pickled constant": pickled_constant,
    "graph calls os.system": foreign_target,
}

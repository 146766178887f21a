"""Measure each layer's kernels in isolation (`cascc compile --measure`): the chosen one and its alternative.

Timings vary from run to run, so they go into the manifest only when asked for; the library bytes do not
depend on them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tvm

from .context import Candidate


def measure_candidates(
    candidates: Mapping[str, Mapping[str, Candidate]],
    target: tvm.target.Target,
    *,
    number: int = 50,
    repeat: int = 5,
) -> dict[str, dict[str, float]]:
    """Median µs of every candidate kernel of every layer, on random activations, with TVM's evaluator."""
    dev = tvm.cpu()
    rng = np.random.default_rng(0)
    result: dict[str, dict[str, float]] = {}
    for layer, kinds in candidates.items():
        result[layer] = {}
        for kind, cand in kinds.items():
            lib = tvm.compile(tvm.IRModule({"main": cand.func}), target=target)
            if cand.in_dtype == "int32":  # int8 kernels read words of 4 activation codes
                x = rng.integers(-(2**31), 2**31 - 1, cand.in_shape, dtype=np.int32)
            else:
                x = rng.standard_normal(cand.in_shape).astype(np.float32)
            args = [
                tvm.runtime.tensor(x, dev),
                *(tvm.runtime.tensor(c, dev) for c in cand.consts),
                tvm.runtime.empty(cand.out_shape, "float32", dev),
            ]
            timer = lib.mod.time_evaluator("main", dev, number=number, repeat=repeat)
            result[layer][kind] = round(timer(*args).median * 1e6, 3)
    return result

"""Post-training int8 quantization (`quantize.ptq`): per-channel weight scales, calibrated activation grids.

Weights: signed 8-bit, symmetric per output unit (scale max |w| / 127 over the masked weight, so a pruned
weight stays exactly 0). The activation each int8 layer reads: unsigned 8-bit, asymmetric per tensor, its
range calibrated on data (`data`) or, without data, on Gaussian probes (with a warning: the ranges then
describe N(0, 1) inputs, not the model's). Calibrators: `minmax` (the observed range) and `percentile`
(the range between the `percentile`-th and (100 − `percentile`)-th value, which ignores rare outliers).

Layers stay fp32 by rule, each with its reason recorded in the Program (the compile table shows it): the
output layer (`keep_output_float`), and those `ir.int8_rules` names (embeddings, layers reading a softmax,
tied weights, and the kinds cascc has no int8 kernel for yet: depthwise, grouped, transposed convolutions).
"""

from __future__ import annotations

import dataclasses
import warnings

import torch

from cascc.errors import OptionError, PassWarning
from cascc.ir import Layer, Program, layers
from cascc.ir.int8_rules import int8_blocker
from cascc.ir.quant import LayerPrecision, Precision, activation_params, weight_scales
from cascc.ir.simulate import activation_arg
from cascc.registry import Registry

from . import probe
from .registry import register

CALIBRATORS: Registry = Registry("calibrator")
MAX_VALUES = 1 << 21  # values kept per tensor for the percentile calibrator (a strided subsample beyond)


@CALIBRATORS.register("minmax")
def _minmax(values: list[torch.Tensor], percentile: float) -> tuple[float, float]:
    return min(float(v.min()) for v in values), max(float(v.max()) for v in values)


@CALIBRATORS.register("percentile")
def _percentile(values: list[torch.Tensor], percentile: float) -> tuple[float, float]:
    flat = torch.cat([v.flatten() for v in values]).double()
    if flat.numel() > MAX_VALUES:
        flat = flat[:: -(-flat.numel() // MAX_VALUES)]
    q = torch.tensor([1 - percentile / 100, percentile / 100], dtype=torch.float64)
    low, high = torch.quantile(flat, q).tolist()
    return low, high


def float_reason(program: Program, layer: Layer, keep_output_float: bool) -> str | None:
    """Why `layer` stays fp32 under the quantization rules (`ir.int8_rules`, and the output layer under
    `keep_output_float`), or None when it becomes int8."""
    if keep_output_float and layer.to_output:
        return "the output layer: its outputs keep float precision (keep_output_float)"
    return int8_blocker(program, layer)


@register("quantize.ptq")
def ptq(
    program: Program,
    data: str | None = None,
    calibrator: str = "percentile",
    percentile: float = 99.99,
    samples: int = 256,
    keep_output_float: bool = True,
    seed: int | None = None,
) -> Program:
    """int8 post-training quantization (see the module docstring); records a precision for every layer."""
    if calibrator not in CALIBRATORS:
        raise OptionError(calibrator, "unknown calibrator", f"choose one of {', '.join(CALIBRATORS)}")
    if not 50 < percentile <= 100:
        raise OptionError(str(percentile), "the percentile must lie in (50, 100]", "pass e.g. 99.99")
    if samples < 1:
        raise OptionError(str(samples), "calibration needs at least one sample", "pass samples ≥ 1")
    if program.int8_layers:
        raise OptionError(program.source, "the program is already quantized", "quantize the fp32 model")
    weights = program.masked_weights()
    nodes = {n.name: n for n in program.exported.graph.nodes}
    precisions: dict[str, LayerPrecision] = {}
    inputs_of: dict[str, str] = {}  # int8 layer -> the node whose value it reads
    for layer in layers(program):
        reason = float_reason(program, layer, keep_output_float)
        if reason is not None:
            precisions[layer.name] = LayerPrecision(Precision.FP32, reason=reason)
            continue
        node = nodes[layer.node]
        inputs_of[layer.name] = node.args[activation_arg(node)].name
    ranges = _calibrate(program, set(inputs_of.values()), data, samples, seed)
    method = CALIBRATORS[calibrator]
    for name, source in inputs_of.items():
        low, high = method(ranges[source], percentile)
        scale, zero = activation_params(low, high)
        precisions[name] = LayerPrecision(Precision.INT8, scale, zero, weight_scales(weights[name]))
    return dataclasses.replace(program, precisions=precisions)


def _calibrate(
    program: Program, names: set[str], data: str | None, samples: int, seed: int | None
) -> dict[str, list[torch.Tensor]]:
    """The values of the named nodes over the calibration batches (the data's training split)."""
    x = None
    if data is None:
        warnings.warn(
            f"{program.source}: int8 ranges calibrated on Gaussian probes, not on the model's data; pass "
            "--data for ranges that fit real inputs",
            PassWarning,
            stacklevel=3,
        )
    else:
        from cascc.data import load

        x = load(data).x_train
    batch = program.inputs[0].shape[0] if program.inputs and program.inputs[0].shape else 1
    count = max(1, -(-samples // max(batch, 1)))
    module = program.module()
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for inputs in probe.batches(program, x, count, seed=program.seed if seed is None else seed):
        for name, value in probe.capture(program, module, inputs, names).items():
            seen[name].append(value.float())
    return seen

"""The training loop over a Program with masks enforced after every step, and `train.fit`: static masks, GMP,
RigL/SET (docs/methods.md §4–5). The schedules built from several runs (IMP, LRR, SCULPT) are in iterative.py.

The loop trains `batched(program)`: the exported graph mapped over the batch (see batched.py). After every
optimizer step masked gradients and weights are zeroed, so a masked weight is exactly zero at all times.
Under `torchrun` (torch.distributed initialized) the module is wrapped in DistributedDataParallel and each
rank takes an interleaved share of every global batch, so one process and N processes see the same batches.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from cascc.data import Dataset, load
from cascc.errors import OptionError
from cascc.ir import Program, layers
from cascc.ir.quant import weight_scales
from cascc.registry import Registry
from cascc.training.config import TrainConfig

from . import mw
from .batched import BatchedModule, batched
from .budget import check_budget, equal_flops_epochs, regrowth_overhead, step_cost
from .connectivity import full_masks
from .density import allocate, check_sparsity
from .optim import HAM
from .registry import register
from .schedules import DropGrow, GradualMagnitude, Static
from .seeding import generator

# `--optimizer`: name -> (parameters, config, lr) -> optimizer; each declares its default learning rate
OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer")
# `--lr-schedule`: name -> (total steps, cycles) -> the factor on the learning rate at each step
LR_SCHEDULES: Registry[Callable[[int, int], Callable[[int], float]]] = Registry("LR schedule")


class Progress(Protocol):
    """What a training loop reports to the user interface (the CLI shows a rich progress bar)."""

    def begin(self, description: str, total: int) -> None: ...

    def step(self, loss: float, accuracy: float) -> None: ...

    def end(self) -> None: ...


# Set by the CLI around a command; passes stay free of any user-interface code.
progress: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(
    "cascc_train_progress", default=None
)
# A dict a caller may set to collect training diagnostics (IMP/LRR: sign agreement between levels).
diagnostics: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "cascc_train_diagnostics", default=None
)


@dataclass(frozen=True, eq=False)
class Trained:
    """Weights and masks after a run, and the weights at `snapshot_step` (for weight rewinding)."""

    weights: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    snapshot: dict[str, torch.Tensor] | None


def train(
    program: Program,
    data: Dataset,
    config: TrainConfig,
    schedule: Static | GradualMagnitude | DropGrow | None = None,
    *,
    masks: Mapping[str, torch.Tensor] | None = None,
    snapshot_step: int | None = None,
    stream: str = "",
) -> Trained:
    """Train `program` on `data`; masks (default: the program's) evolve under `schedule` (default static)."""
    schedule = schedule or Static()
    _check_data(program, data)
    masks = {name: m.clone() for name, m in (program.masks if masks is None else masks).items()}
    module = batched(dataclasses.replace(program, masks=masks), trainable_int8=True)
    factors = mw.attach(module.inner, masks) if config.mw else {}
    if factors and not isinstance(schedule, Static):
        raise OptionError(None, "m⊙w trains a fixed mask", "use it with the static schedule")
    params = dict(module.inner.named_parameters())
    masked = {} if factors else {name: params[name] for name in masks}
    # every tensor whose masked entries must stay exactly zero, with its mask's name (schedules replace masks):
    # the weights, or both factors of m⊙w
    enforced = [(t, name) for name, pair in factors.items() for t in pair] or [
        (params[name], name) for name in masks
    ]
    world, rank = world_and_rank()
    _agree(masks, world)
    model = module if world == 1 else torch.nn.parallel.DistributedDataParallel(module)
    multiple = world * module.group
    batch_size = max(multiple, config.batch_size // multiple * multiple)
    steps_per_epoch = max(1, len(data.x_train) // batch_size)
    total = steps_per_epoch * config.epochs
    optimizer = _optimizer(config, module.parameters())
    lr = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(config.lr_schedule, total, config.cycles))
    schedule.start(masks, total)
    order_gen = generator(config.seed, "train.order", stream)
    report = progress.get() if rank == 0 else None
    if report:
        report.begin(f"training ({schedule.name})", total)
    snapshot, step = None, 0
    for _epoch in range(config.epochs):
        order = torch.randperm(len(data.x_train), generator=order_gen)
        for i in range(steps_per_epoch):
            if step == snapshot_step:
                snapshot = _weights(module, factors)
            idx = order[i * batch_size : (i + 1) * batch_size][rank::world]
            logits = model(data.x_train[idx])
            loss = F.cross_entropy(logits, data.y_train[idx])
            if not torch.isfinite(loss):
                raise OptionError(
                    program.source,
                    f"training diverged at step {step} of {total} (loss {float(loss)})",
                    "lower the learning rate (--lr)" + (" or HAM's α (ham_alpha)" if config.ham else ""),
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if schedule.update(step, masked, masks):
                _clear_state(optimizer, masked, masks)
            with torch.no_grad():
                for tensor, name in enforced:
                    if tensor.grad is not None:
                        tensor.grad.mul_(masks[name])
                optimizer.step()
                if factors:
                    _mw_step(factors, config, optimizer.param_groups[0]["lr"], step, total)
                for tensor, name in enforced:
                    tensor.mul_(masks[name])
            lr.step()
            step += 1
            if report:
                accuracy = (logits.argmax(1) == data.y_train[idx]).float().mean()
                report.step(float(loss.detach()), float(accuracy))
    if report:
        report.end()
    mw.fold(module.inner, factors)
    return Trained(_weights(module, {}), masks, snapshot)


def trained_program(program: Program, result: Trained) -> Program:
    """`program` holding the run's weights and masks; an int8 layer's weight scales follow its trained
    weight, as they did in every forward of the run (its activation grid stays as calibrated)."""
    trained = dataclasses.replace(program.with_weights(result.weights), masks=result.masks)
    if not program.int8_layers:
        return trained
    weights = trained.masked_weights()
    precisions = dict(trained.precisions)
    for name, spec in trained.int8_layers.items():
        precisions[name] = dataclasses.replace(spec, weight_scales=weight_scales(weights[name]))
    return dataclasses.replace(trained, precisions=precisions)


@register("train.fit")
def fit(
    program: Program,
    *,
    data: str,
    schedule: str = "static",
    sparsity: float | None = None,
    allocator: str = "uniform",
    allocator_options: Mapping[str, Any] | None = None,
    update_every: int | None = None,
    budget: str = "steps",
    budget_cap: float | None = None,
    **options: Any,
) -> Program:
    """Train on data set `data` with masks static (fixed masks, de novo or fine-tuning), pruned gradually by
    magnitude (`gmp`, to `sparsity` under `allocator`), or rewired (`rigl`, `set`, `rigl-cascade`) at constant
    counts. `budget="flops"` trains a sparse mask for as many epochs as the dense run's FLOPs pay for
    (`epochs` × dense/sparse step cost, at most `budget_cap`×; see budget.py)."""
    config = TrainConfig.of(options)
    if check_budget(budget) == "flops" and schedule != "gmp":
        config = _equal_flops(program, config, schedule, update_every, budget_cap)
    if schedule == "static":
        plan = Static()
    elif schedule == "gmp":
        plan = GradualMagnitude(_final_counts(program, sparsity, allocator, allocator_options))
        program = dataclasses.replace(program, masks=full_masks(layers(program), program.masks))
    elif schedule in DROP_GROW:
        if not program.masks:
            raise OptionError(
                program.source,
                f"{schedule} rewires an existing sparse mask and the model has none",
                "prune first",
            )
        plan = DropGrow(DROP_GROW[schedule], every=update_every, seed=config.seed)
    else:
        raise OptionError(
            None,
            f"unknown schedule {schedule!r} for train.fit",
            f"use static, gmp or one of {', '.join(DROP_GROW)}",
        )
    return trained_program(program, train(program, load(data), config, plan))


# the drop-and-grow schedules of train.fit, by the growth criterion they use
DROP_GROW = {"rigl": "gradient", "set": "random", "rigl-cascade": "cascade"}


def _equal_flops(
    program: Program, config: TrainConfig, schedule: str, update_every: int | None, cap: float | None
) -> TrainConfig:
    """The config with `epochs` stretched to the dense run's training FLOPs at the program's masks."""
    cost = step_cost(program)
    overhead = 0.0
    if schedule in DROP_GROW:
        overhead = regrowth_overhead(update_every or DropGrow.DEFAULT_EVERY, DropGrow.stop)
    epochs = equal_flops_epochs(config.epochs, cost, overhead=overhead, cap=cap)
    found = diagnostics.get()
    if found is not None:
        found["budget"] = {
            "dense_epochs": config.epochs,
            "epochs": epochs,
            "step_flops_ratio": cost.ratio + overhead,
            "flops_vs_dense": epochs * (cost.ratio + overhead) / config.epochs,
        }
    return dataclasses.replace(config, epochs=epochs)


@register("train.preset")
def preset(program: Program, *, name: str, **settings: Any) -> Program:
    """Records the `cascc train --preset` a run used and the values of the options it sets (its history
    step; training/presets.py); changes nothing."""
    return program


def _final_counts(
    program: Program, sparsity: float | None, allocator: str, allocator_options: Mapping[str, Any] | None
) -> dict[str, int]:
    if sparsity is None:
        raise OptionError(None, "gradual magnitude pruning needs a target sparsity", "pass --sparsity")
    check_sparsity(sparsity)
    return dict(allocate(allocator, layers(program), sparsity, **dict(allocator_options or {})))


def _check_data(program: Program, data: Dataset) -> None:
    per_sample = math.prod(program.inputs[0].shape[1:]) if program.inputs else 0
    if data.x_train[0].numel() != per_sample:
        raise OptionError(
            data.name,
            f"samples have {data.x_train[0].numel()} values but the model's input takes {per_sample} per sample",
            "pass data matching the model's input",
        )
    classes = program.outputs[0].shape[-1] if program.outputs else 0
    if data.classes > classes:
        raise OptionError(
            data.name,
            f"labels go up to {data.classes - 1} but the model has {classes} outputs",
            "use a model with one output per class",
        )


def _optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    build = OPTIMIZERS[config.optimizer]
    base = build(params, config, **({} if config.lr is None else {"lr": config.lr}))
    return HAM(base, alpha=config.ham_alpha, beta=config.ham_beta) if config.ham else base


@OPTIMIZERS.register("sgd")
def sgd(params, config: TrainConfig, lr: float = 0.1) -> torch.optim.Optimizer:
    """SGD with (Nesterov, when > 0) momentum and weight decay."""
    return torch.optim.SGD(
        params,
        lr=lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
        weight_decay=config.weight_decay,
    )


@OPTIMIZERS.register("adamw")
def adamw(params, config: TrainConfig, lr: float = 3e-3) -> torch.optim.Optimizer:
    """AdamW with decoupled weight decay (Loshchilov & Hutter, ICLR 2019)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)


@LR_SCHEDULES.register("cosine")
def cosine(total: int, cycles: int) -> Callable[[int], float]:
    """One cosine decay from the full rate to zero."""
    return lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


@LR_SCHEDULES.register("step")
def step_decay(total: int, cycles: int) -> Callable[[int], float]:
    """×0.1 at 50% and at 75% of training."""
    return lambda step: 0.1 ** ((step >= total // 2) + (step >= 3 * total // 4))


@LR_SCHEDULES.register("constant")
def constant(total: int, cycles: int) -> Callable[[int], float]:
    """The full rate throughout."""
    return lambda step: 1.0


@LR_SCHEDULES.register("cyclic")
def cyclic(total: int, cycles: int) -> Callable[[int], float]:
    """Cosine with warm restarts: `cycles` equal cycles (cyclic sparse training)."""
    length = max(1, total // cycles)
    return lambda step: 0.5 * (1 + math.cos(math.pi * (step % length) / length))


def _lr_factor(kind: str, total: int, cycles: int = 1) -> Callable[[int], float]:
    return LR_SCHEDULES[kind](total, cycles)


def _clear_state(optimizer: torch.optim.Optimizer, masked: Mapping[str, torch.Tensor], masks) -> None:
    """Zero optimizer state (momentum, Adam moments) of weights a schedule just deactivated or regrew."""
    for name, weight in masked.items():
        for value in optimizer.state.get(weight, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == weight.shape:
                value.mul_(masks[name])


def _weights(module: BatchedModule, factors: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Trained parameters by the program's names (m⊙w-reparameterized weights as their product)."""
    found = {
        name: p.detach().clone()
        for name, p in module.inner.named_parameters()
        if ".parametrizations." not in name
    }
    for name in factors:
        owner, _, attribute = name.rpartition(".")
        found[name] = getattr(module.inner.get_submodule(owner), attribute).detach().clone()
    return found


def _mw_step(factors, config: TrainConfig, lr: float, step: int, total: int) -> None:
    """m⊙w after the optimizer step: decoupled decay on both factors, Sign-In rebalancing when due."""
    if config.mw_decay:
        mw.decay(factors, lr, mw.decay_rate(config.mw_decay, step, total))
    every = config.mw_rebalance_every
    if every and step > 0 and step % every == 0:
        mw.rebalance(factors, config.mw_rebalance_scale)


def world_and_rank() -> tuple[int, int]:
    """(world size, this process's rank) under torchrun; (1, 0) in a single process."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _agree(masks: Mapping[str, torch.Tensor], world: int) -> None:
    """Under torchrun, check every rank derived the same masks (they come from the same seed)."""
    if world == 1:
        return
    for name in sorted(masks):
        mine = masks[name].to(torch.uint8)
        first = mine.clone()
        torch.distributed.broadcast(first, src=0)
        if not torch.equal(first, mine):
            raise RuntimeError(f"rank {torch.distributed.get_rank()} derived a different mask for {name}")

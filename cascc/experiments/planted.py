"""Planted tickets (Plant 'n' Seek, Fischer & Burkholz, ICLR 2022): a small target network that solves a task
is planted into a wider random network, so the mask a pruner should find is known. Each pruner is scored by
the precision and recall of its mask against the planted one (at the planted number of weights, so the two
coincide) and by how well the pruned wide network, untrained, solves the task.

Tasks (small, CPU, seconds): `relu` — regression y = relu(x₀) from 8 inputs, the target a chain of unit
weights; `circle` — 2-D points inside/outside a circle, the target a trained 2-16-16-2 ReLU MLP; `helix` —
regression t ↦ (cos 4t, sin 4t, t), the target a trained 1-16-16-3 ReLU MLP. Wide networks are
in-100-100-out ReLU MLPs, He-initialized, the target's weights written over a random choice of units, the
other units' biases zero.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..registry import Registry

WIDE = 100
TEACHER_STEPS = 600
PRUNERS = ("magnitude", "snip", "synflow", "random")


@dataclass(frozen=True)
class Task:
    name: str
    inputs: int
    outputs: int
    classification: bool
    sample: Callable[[torch.Generator, int], tuple[torch.Tensor, torch.Tensor]]
    teacher_hidden: int | None  # None: the analytic relu chain


def _relu_task(gen, n):
    x = torch.randn(n, 8, generator=gen)
    return x, torch.relu(x[:, :1])


def _circle(gen, n):
    x = torch.rand(n, 2, generator=gen) * 2 - 1
    return x, (x.pow(2).sum(1) < 0.5).long()


def _helix(gen, n):
    t = torch.rand(n, 1, generator=gen) * 2 - 1
    return t, torch.cat([torch.cos(4 * t), torch.sin(4 * t), t], dim=1)


TASKS: Registry[Task] = Registry("planted task")


def task(record: Task) -> Task:
    """Register a planted task under its name (`cascc planted --task NAME`)."""
    return TASKS.register(record.name)(record)


task(Task("relu", 8, 1, False, _relu_task, None))
task(Task("circle", 2, 2, True, _circle, 16))
task(Task("helix", 1, 3, False, _helix, 16))


def mlp(*widths: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def teacher(task: Task, gen: torch.Generator) -> nn.Sequential:
    """The target network: the analytic relu chain, or a small MLP trained on the task."""
    if task.teacher_hidden is None:
        net = mlp(task.inputs, 1, 1, task.outputs)
        with torch.no_grad():
            for linear in net[::2]:
                linear.weight.zero_()
                linear.bias.zero_()
                linear.weight[0, 0] = 1.0
        return net
    torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
    net = mlp(task.inputs, task.teacher_hidden, task.teacher_hidden, task.outputs)
    x, y = task.sample(gen, 2000)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(TEACHER_STEPS):
        optimizer.zero_grad()
        _loss(task, net(x), y).backward()
        optimizer.step()
    return net


def plant(
    target: nn.Sequential, task: Task, gen: torch.Generator
) -> tuple[nn.Sequential, dict[str, torch.Tensor]]:
    """The wide network holding `target` on random units, and the planted mask by parameter name."""
    small = [target[i] for i in range(0, len(target), 2)]
    widths = [task.inputs] + [WIDE] * (len(small) - 1) + [task.outputs]
    wide = mlp(*widths)
    big = [wide[i] for i in range(0, len(wide), 2)]
    units = [torch.arange(task.inputs)]
    units += [torch.randperm(WIDE, generator=gen)[: s.out_features] for s in small[:-1]]
    units += [torch.arange(task.outputs)]
    masks = {}
    with torch.no_grad():
        for index, (s, b) in enumerate(zip(small, big, strict=True)):
            b.weight.copy_(torch.randn(b.weight.shape, generator=gen) * math.sqrt(2.0 / b.in_features))
            b.bias.zero_()
            rows, cols = units[index + 1], units[index]
            b.weight[rows[:, None], cols[None, :]] = s.weight
            b.bias[rows] = s.bias
            mask = torch.zeros(b.weight.shape, dtype=torch.bool)
            mask[rows[:, None], cols[None, :]] = s.weight != 0
            masks[f"{2 * index}.weight"] = mask
    return wide, masks


@dataclass(frozen=True)
class Score:
    task: str
    pruner: str
    precision: float
    recall: float
    metric: str
    value: float

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def run(
    tasks: tuple[str, ...] = tuple(TASKS), pruners: tuple[str, ...] = PRUNERS, seed: int = 0
) -> list[Score]:
    """Plant, prune with each pruner at the planted number of weights, and score every mask."""
    from .. import passes
    from ..frontends.torch import from_module

    scores = []
    for name in tasks:
        task = TASKS[name]
        gen = torch.Generator().manual_seed(seed)
        target = teacher(task, gen)
        wide, planted = plant(target, task, gen)
        x_test, y_test = task.sample(gen, 1000)
        program = from_module(wide, (x_test[:1],), source=f"planted:{name}", seed=seed)
        kept = sum(int(m.sum()) for m in planted.values())
        total = sum(m.numel() for m in planted.values())
        sparsity = 1 - kept / total
        planted_program = dataclasses.replace(program, masks=planted)
        metric, oracle = _metric(task, planted_program, x_test, y_test)
        scores.append(Score(name, "planted (oracle)", 1.0, 1.0, metric, oracle))
        with tempfile.TemporaryDirectory() as tmp:
            data = _save(task, gen, Path(tmp) / "data.npz") if task.classification else None
            for pruner in pruners:
                step = _pruner_step(pruner, sparsity, data, seed)
                if step is None:
                    continue
                pruned = passes.run(program, [step])
                hits = sum(int((pruned.masks[n] & m).sum()) for n, m in planted.items())
                chosen = sum(int(pruned.masks[n].sum()) for n in planted)
                scores.append(
                    Score(
                        name,
                        pruner,
                        hits / max(chosen, 1),
                        hits / kept,
                        metric,
                        _metric(task, pruned, x_test, y_test)[1],
                    )
                )
    return scores


def _pruner_step(pruner: str, sparsity: float, data: str | None, seed: int):
    """The pass for a pruner, ranking all layers together (the planted layer densities are unknown to it)."""
    options = {"sparsity": sparsity, "allocator": "global"}
    if pruner == "snip":
        if data is None:
            return None  # SNIP scores with a classification loss: regression tasks have none
        return ("prune.snip", {**options, "data": data})
    if pruner == "random":
        return ("prune.random", {"sparsity": sparsity, "allocator": "erk", "seed": seed})
    return (f"prune.{pruner}", options)


def _metric(task: Task, program, x, y) -> tuple[str, float]:
    from ..passes.batched import batched

    with torch.no_grad():
        out = batched(program).eval()(x)
    if task.classification:
        return "accuracy", float((out.argmax(1) == y).float().mean())
    return "mse", float((out - y).pow(2).mean())


def _loss(task: Task, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task.classification:
        return nn.functional.cross_entropy(out, y)
    return (out - y).pow(2).mean()


def _save(task: Task, gen: torch.Generator, path: Path) -> str:
    x, y = task.sample(gen, 512)
    np.savez(path, x_train=x.numpy(), y_train=y.numpy(), x_test=x[:64].numpy(), y_test=y[:64].numpy())
    return f"npz:{path}"

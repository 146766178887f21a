"""The training options, declared once: each field of `TrainConfig` (the loop: passes/train.py) and of
`TrainPlan` (what to train: training/plan.py) carries how the CLI offers it, so click options, the plan and
the loop's config never restate each other. Torch-free, so `cascc --help` builds the options without it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import OptionError


@dataclass(frozen=True)
class Flag:
    """How the CLI offers a field: `--field-name`, its help, and its range (`low`/`high`, `low_open`) or
    the registry its names come from (`names`, read only when the option is parsed or its help shown)."""

    help: str | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    names: Callable[[], Iterable[str]] | None = None


def option(default: Any, help: str | None = None, **flag: Any) -> Any:
    """A dataclass field the CLI offers as an option (see `Flag`)."""
    return dataclasses.field(default=default, metadata={"flag": Flag(help, **flag)})


# training budgets: `steps` trains --epochs as given, `flops` spends the dense run's FLOPs (passes/budget.py)
BUDGETS = ("steps", "flops")


def _optimizers() -> Iterable[str]:
    from ..passes.train import OPTIMIZERS

    return OPTIMIZERS


def _lr_schedules() -> Iterable[str]:
    from ..passes.train import LR_SCHEDULES

    return LR_SCHEDULES


def known(name: str, names: Iterable[str], what: str) -> None:
    """Refuse `name` unless it is one of a registry's `names` (listed in the error)."""
    names = list(names)
    if name not in names:
        raise OptionError(None, f"unknown {what} {name!r}", f"use one of {', '.join(names)}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer and schedule of one training run; `lr=None` picks the optimizer's default (its `lr`
    parameter in passes/train.py: 0.1 for SGD with Nesterov momentum, 3e-3 for AdamW); `ham` wraps the
    optimizer in HAM (optim.py) with its α and β; `mw` trains masked weights as m⊙w with the decay and
    Sign-In constants documented in mw.py."""

    epochs: int = option(20, "Epochs (per IMP/LRR round).", low=1)
    batch_size: int = option(128, low=1)
    optimizer: str = option("sgd", names=_optimizers)
    lr: float | None = option(None, "Learning rate (default 0.1 SGD, 3e-3 AdamW).", low=0, low_open=True)
    momentum: float = 0.9
    weight_decay: float = option(5e-4, low=0)
    lr_schedule: str = option("cosine", names=_lr_schedules)
    cycles: int = 4
    seed: int = 0
    ham: bool = option(False, "Wrap the optimizer in HAM (hyperbolic aware minimization; masks kept).")
    ham_alpha: float = 200.0
    ham_beta: float = 1e-3
    mw: bool = option(False, "Train masked weights as m⊙w with decaying weight decay (PILoT-style).")
    mw_decay: float = 1e-4
    mw_rebalance_every: int = option(0, "With --mw: Sign-In rebalancing period (steps).", low=0)
    mw_rebalance_scale: float = 2.0

    def __post_init__(self) -> None:
        known(self.optimizer, _optimizers(), "optimizer")
        known(self.lr_schedule, _lr_schedules(), "LR schedule")
        if self.epochs < 1 or self.batch_size < 1:
            raise OptionError(None, "epochs and batch size must be ≥ 1", "pass positive values")

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> TrainConfig:
        """The config from a pass's keyword options (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise OptionError(
                None, f"unknown training option(s) {', '.join(unknown)}", f"use {sorted(names)}"
            )
        return TrainConfig(**options)

    def loop_options(self) -> dict[str, Any]:
        """The loop options a user can set (the fields the CLI offers) with a value, as pass options: what
        a training pass records in the program's history."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(TrainConfig)
            if "flag" in f.metadata and getattr(self, f.name) is not None
        }


def offered(cls: type) -> list[dataclasses.Field]:
    """The fields of a config dataclass the CLI offers as options, in declaration order."""
    return [f for f in dataclasses.fields(cls) if "flag" in f.metadata]

"""Named training presets (`cascc train --preset NAME`): the best de novo method the accuracy benchmark found
(docs/benchmarks/accuracy_denovo.md), as values for `cascc train`'s options. An option given on the command
line wins over the preset; the values a run used are printed and recorded in the `.pt2`'s history as the
`train.preset` step. Torch-free, like the option declarations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import OptionError


@dataclass(frozen=True)
class Preset:
    """A preset's one-line summary and its option values, by `cascc train` parameter name."""

    summary: str
    options: Mapping[str, Any]

    def apply(
        self, options: Mapping[str, Any], given: Iterable[str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the options with the preset's values where the user gave none, the values this run uses for
        every option the preset sets)."""
        given = set(given)
        merged = dict(options)
        for name, value in self.options.items():
            if name not in given:
                merged[name] = value
        return merged, {name: merged[name] for name in self.options}


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "denovo": Preset(
            "de novo dynamic sparse training: a random mask under the trainability (gain) allocation, "
            "sparse-aware init, RigL rewiring, the dense run's training FLOPs spent as longer training (at most "
            "10× the epochs; MNIST-1D CNN settings)",
            MappingProxyType(
                {
                    "sparsity": 0.9,
                    "allocator": "gain",
                    "criterion": "random",
                    "init": "sparse-aware",
                    "schedule": "rigl",
                    "budget": "flops",
                    "budget_cap": 10.0,
                    "epochs": 30,
                    "optimizer": "adamw",
                    "lr": 1e-2,
                    "weight_decay": 1e-2,
                    "batch_size": 128,
                }
            ),
        ),
        "ticket": Preset(
            "a sparse ticket without dense pre-training or IMP rounds: RigL on a random mask under the "
            "trainability (gain) allocation, trained for the dense run's steps (a tenth of its FLOPs at 90%) with strong decoupled weight "
            "decay (0.5: the sparse MLP overfits 4000 samples; MNIST-1D 40-500-500-10 MLP settings, the "
            "lottery-ticket notebook's 6000 steps of batch 100)",
            MappingProxyType(
                {
                    "sparsity": 0.9,
                    "allocator": "gain",
                    "criterion": "random",
                    "init": "sparse-aware",
                    "schedule": "rigl",
                    "budget": "steps",
                    "epochs": 150,
                    "optimizer": "adamw",
                    "lr": 1e-2,
                    "weight_decay": 0.5,
                    "batch_size": 100,
                }
            ),
        ),
    }
)


def preset(name: str) -> Preset:
    """The preset registered as `name`, or an OptionError listing them."""
    if name not in PRESETS:
        raise OptionError(None, f"unknown preset {name!r}", f"use one of {', '.join(PRESETS)}")
    return PRESETS[name]

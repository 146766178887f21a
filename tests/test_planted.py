"""Planted tickets: the oracle mask reproduces the target, and the pruners that find it keep finding it."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from cascc.experiments.planted import TASKS, plant, run, teacher
from cascc.frontends.torch import from_module
from support import invoke


@pytest.fixture(scope="module")
def scores():
    return {(s.task, s.pruner): s for s in run(seed=0)}


@pytest.mark.parametrize("name", ["relu", "circle", "helix"])
def test_the_planted_mask_computes_the_target_exactly(name):
    task = TASKS[name]
    gen = torch.Generator().manual_seed(5)
    target = teacher(task, gen)
    wide, masks = plant(target, task, gen)
    x, _ = task.sample(gen, 64)
    program = dataclasses.replace(from_module(wide, (x[:1],)), masks=masks)
    module = program.module()
    with torch.no_grad():
        planted = torch.cat([module(row[None]) for row in x])
        torch.testing.assert_close(planted, target(x), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(wide(x), target(x), atol=1e-3)  # the rest of the wide net is not silent


def test_pruners_are_scored_against_the_plant(scores):
    # regression anchors (seed 0): a pruner that stops finding the ticket fails here
    assert scores[("relu", "synflow")].recall == 1.0 and scores[("relu", "synflow")].value < 1e-6
    for task in ("circle", "helix"):
        assert scores[(task, "magnitude")].recall > 2 * scores[(task, "random")].recall
        assert scores[(task, "synflow")].recall > 2 * scores[(task, "random")].recall
    assert scores[("circle", "planted (oracle)")].value > 0.95
    for score in scores.values():  # masks hold exactly the planted count, so precision equals recall
        assert score.precision == pytest.approx(score.recall)


def test_cli_prints_json_scores():
    code, text = invoke("planted", "--task", "relu", "--json")
    assert code == 0, text
    rows = json.loads(text[text.index("[") :])
    assert {r["pruner"] for r in rows} >= {"planted (oracle)", "magnitude", "synflow", "random"}

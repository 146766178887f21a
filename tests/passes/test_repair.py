"""Flow repair: every dead or unread unit gets one connection, kept weights stay, the cost is reported."""

from __future__ import annotations

import pytest
import torch

from cascc import frontends, passes
from cascc.errors import PassWarning
from cascc.ir import layers
from cascc.passes.connectivity import unit_edges
from support import model_ref


@pytest.mark.parametrize("model", ["lenet_300_100", "cnn"])
def test_repair_feeds_every_dead_unit_and_reads_every_hidden_one(model):
    program = frontends.load(model_ref(model))
    sparse = passes.run(program, [("prune.random", {"sparsity": 0.995, "seed": 3})])
    before = {layer.name: unit_edges(layer, sparse.masks[layer.name]) for layer in layers(sparse)}
    assert sum(int((~e.any(dim=1)).sum()) for e in before.values()) > 0  # there was damage to repair
    with pytest.warns(PassWarning, match=r"repair.flow: added (\d+) weights"):
        repaired = passes.run(sparse, [("repair.flow", {})])
    added = 0
    for layer in layers(repaired):
        old, new = sparse.masks[layer.name], repaired.masks[layer.name]
        assert bool((old <= new).all())  # nothing kept is dropped
        added += int(new.sum() - old.sum())
        edges = unit_edges(layer, new)
        assert bool(edges.any(dim=1).all()), layer.name  # no output unit without an input
        dead = int((~before[layer.name].any(dim=1)).sum())
        assert int(new.sum() - old.sum()) >= dead
    hidden = [layer for layer in layers(repaired) if not layer.to_output]
    for layer in hidden:  # each hidden unit is read by some consumer with an exact unit map
        consumers = [c for c in layers(repaired) if layer.name in c.producers]
        if (
            len(consumers) == 1
            and consumers[0].kind.name == "LINEAR"
            and consumers[0].fan_in == layer.fan_out
        ):
            assert bool(unit_edges(consumers[0], repaired.masks[consumers[0].name]).any(dim=0).all())
    assert added > 0


def test_repair_is_a_recipe_option_and_seeded():
    program = frontends.load(model_ref("lenet_300_100"))
    from cascc.recipe import Recipe

    steps = Recipe(sparsity=0.99, criterion="random", repair_flow=True, seed=0).steps()
    assert [name for name, _ in steps] == ["prune.random", "repair.flow"]
    with pytest.warns(PassWarning):
        a = passes.run(program, steps)
    with pytest.warns(PassWarning):
        b = passes.run(program, steps)
    assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)

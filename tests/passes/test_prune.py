import pytest
import torch

from cascc import passes
from cascc.errors import CasccError, OptionError, PassFailed
from cascc.ir import layers


def round_half_up(x: float) -> int:
    return int(x + 0.5)


def _zeros(program, name):
    return int((~program.masks[name]).sum())


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.95, 0.999])
@pytest.mark.parametrize("fixture", ["mlp_program", "cnn_program"])
def test_magnitude_prunes_exactly_round_sparsity_times_size(request, fixture, sparsity):
    program = request.getfixturevalue(fixture)
    pruned = passes.run(program, [("prune.magnitude", {"sparsity": sparsity})])
    for layer in layers(program):
        assert _zeros(pruned, layer.name) == round_half_up(sparsity * layer.size), layer.name


def test_magnitude_keeps_the_largest_weights(mlp_program):
    pruned = passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.75})])
    for layer in layers(mlp_program):
        w = mlp_program.weights[layer.name].abs()
        mask = pruned.masks[layer.name]
        assert w[mask].min() >= w[~mask].max()


def test_magnitude_is_deterministic_with_ties(mlp_program):
    tied = mlp_program.with_weights({"2.weight": torch.ones(24, 32)})
    a = passes.run(tied, [("prune.magnitude", {"sparsity": 0.5})])
    b = passes.run(tied, [("prune.magnitude", {"sparsity": 0.5})])
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert _zeros(a, "2.weight") == 384


def test_pruned_module_matches_masked_reference(mlp_program):
    pruned = passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.8})])
    x = mlp_program.example_inputs()[0]
    ref = mlp_program.module()
    with torch.no_grad():
        for layer in layers(mlp_program):
            ref.get_parameter(layer.name).mul_(pruned.masks[layer.name])
    torch.testing.assert_close(pruned.module()(x), ref(x))


def test_history_records_pass_and_options(mlp_program):
    pruned = passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.5})])
    assert [(r.name, dict(r.options)) for r in pruned.history] == [("prune.magnitude", {"sparsity": 0.5})]
    assert mlp_program.history == () and not mlp_program.masks  # input untouched


def test_sparsity_out_of_range_is_a_user_error(mlp_program):
    with pytest.raises(OptionError, match="outside"):
        passes.run(mlp_program, [("prune.magnitude", {"sparsity": 1.0})])


def test_unknown_pass_and_allocator(mlp_program):
    with pytest.raises(CasccError, match="unknown pass"):
        passes.run(mlp_program, [("prune.nope", {})])
    with pytest.raises(OptionError, match="unknown allocator"):
        passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.5, "allocator": "nope"})])


def test_unexpected_exception_is_wrapped_with_history(mlp_program):
    @passes.register("test.explode")
    def explode(program):
        raise ZeroDivisionError("boom")

    try:
        with pytest.raises(
            PassFailed, match=r"'test.explode' failed after prune.magnitude: ZeroDivisionError"
        ):
            passes.run(mlp_program, [("prune.magnitude", {"sparsity": 0.5}), ("test.explode", {})])
    finally:
        del passes.PASSES["test.explode"]


def test_registry_rejects_duplicates():
    with pytest.raises(ValueError, match="registered twice"):
        passes.register("prune.magnitude")(lambda program: program)

import dataclasses

import pytest
import torch

from cascc.ir import LayerKind, layers, verify


def test_layers_of_mlp(mlp_program):
    found = layers(mlp_program)
    assert [ly.name for ly in found] == ["0.weight", "2.weight", "4.weight"]
    assert [(ly.fan_in, ly.fan_out) for ly in found] == [(20, 32), (32, 24), (24, 5)]
    assert all(ly.kind is LayerKind.LINEAR for ly in found)
    assert [ly.activation for ly in found] == ["relu", "relu", None]
    assert [ly.producers for ly in found] == [(), ("0.weight",), ("2.weight",)]
    assert [ly.bias for ly in found] == ["0.bias", "2.bias", "4.bias"]


def test_layers_of_cnn_trace_through_bn_residual_and_pool(cnn_program):
    by_name = {ly.name: ly for ly in layers(cnn_program)}
    assert list(by_name) == ["stem.weight", "conv1.weight", "conv2.weight", "dw.weight", "head.weight"]
    assert by_name["stem.weight"].fan_in == 3 * 9 and by_name["stem.weight"].activation == "relu"
    assert by_name["conv2.weight"].fan_in == 8 and by_name["conv2.weight"].kind is LayerKind.CONV
    dw = by_name["dw.weight"]
    assert dw.kind is LayerKind.DEPTHWISE and dw.groups == 8 and dw.fan_in == 9
    # the residual add merges the stem's and conv2's outputs before the depthwise conv
    assert dw.producers == ("stem.weight", "conv2.weight")
    assert by_name["head.weight"].producers == ("dw.weight",)
    assert by_name["conv1.weight"].producers == ("stem.weight",)


def test_module_applies_masks_without_touching_the_program(mlp_program):
    w = mlp_program.weights["0.weight"].clone()
    mask = torch.zeros_like(w, dtype=torch.bool)
    mask[0] = True
    program = dataclasses.replace(mlp_program, masks={"0.weight": mask})
    module = program.module()
    assert torch.equal(module.state_dict()["0.weight"], w * mask)
    assert torch.equal(program.weights["0.weight"], w)  # the stored weight is unchanged


def test_with_weights_returns_a_new_program(mlp_program):
    new = mlp_program.with_weights({"4.bias": torch.ones(5)})
    assert torch.equal(new.weights["4.bias"], torch.ones(5))
    assert not torch.equal(mlp_program.weights["4.bias"], torch.ones(5))
    x = mlp_program.example_inputs()[0]
    delta = new.module()(x) - mlp_program.module()(x)
    expected = (torch.ones(5) - mlp_program.weights["4.bias"]).expand_as(delta)
    torch.testing.assert_close(delta, expected)


@pytest.mark.parametrize(
    "mask, message",
    [
        ({"nope.weight": torch.ones(2, dtype=torch.bool)}, "names no parameter"),
        ({"0.weight": torch.ones(32, 20)}, "dtype"),
        ({"0.weight": torch.ones(20, 32, dtype=torch.bool)}, "shape"),
    ],
)
def test_verify_rejects_bad_masks(mlp_program, mask, message):
    with pytest.raises(ValueError, match=message):
        verify(dataclasses.replace(mlp_program, masks=mask))


def test_verify_rejects_nan_weights(mlp_program):
    bad = mlp_program.with_weights({"0.bias": torch.full((32,), float("nan"))})
    with pytest.raises(ValueError, match="NaN"):
        verify(bad)


def test_signature(cnn_program):
    assert [(s.name, s.shape, s.dtype) for s in cnn_program.inputs] == [("x", (2, 3, 8, 8), "float32")]
    assert [(s.shape, s.dtype) for s in cnn_program.outputs] == [((2, 6), "float32")]


def test_linear_seen_through_bmm_against_an_expanded_weight():
    from torch import nn

    from cascc.frontends.torch import from_module

    # at batch > 1, MultiheadAttention's in-projection becomes bmm(x, expand(permute(W)))
    attn = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    program = from_module(attn, (torch.randn(3, 5, 16),))
    names = [ly.name for ly in layers(program)]
    assert names == [
        "self_attn.in_proj_weight",
        "self_attn.out_proj.weight",
        "linear1.weight",
        "linear2.weight",
    ]
    in_proj = layers(program)[0]
    assert (in_proj.fan_in, in_proj.fan_out) == (16, 48)


def test_linear_weights_stored_in_out_become_out_in(tmp_path):
    """GPT-2's Conv1D and a plain x @ W read their weight as [in, out]: the program stores them [out, in],
    so fan-in and fan-out are the layer's, and the original module still takes the program's weights."""
    from cascc import passes
    from cascc.frontends.torch import from_module, load_pt2, save_pt2
    from models import InOutMLP

    torch.manual_seed(0)
    model, x = InOutMLP().eval(), torch.randn(2, 5, 32)
    program = from_module(model, (x,))
    assert program.transposed == {"up.weight", "down"}
    shapes = {ly.name: (ly.weight_shape, ly.fan_in, ly.fan_out) for ly in layers(program)}
    assert shapes == {
        "up.weight": ((64, 32), 32, 64),
        "down": ((48, 64), 64, 48),
        "head.weight": ((10, 48), 48, 10),
    }
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x))
    pruned = passes.run(program, [("prune.magnitude", {"sparsity": 0.8})])
    # the masked weights load back into the user's module, in its own [in, out] layout
    restored = pruned.load_into(model)
    assert restored.up.weight.shape == (32, 64)
    assert torch.equal(restored.up.weight == 0, ~pruned.masks["up.weight"].t())
    with torch.no_grad():
        torch.testing.assert_close(restored(x), pruned.module()(x))
    reloaded = load_pt2(save_pt2(pruned, tmp_path / "p.pt2"))
    assert reloaded.transposed == pruned.transposed and set(reloaded.masks) == set(pruned.masks)


def test_tied_weights_are_one_prunable_layer():
    """An embedding tied to the LM head is one layer, counted once by the sparsity budget."""
    from cascc import passes
    from cascc.frontends.torch import from_module
    from models import TiedLM

    torch.manual_seed(0)
    model = TiedLM().eval()
    ids = torch.randint(0, 64, (2, 7))
    program = from_module(model, (ids,))
    found = layers(program)
    assert [ly.name for ly in found].count("lm_head.weight") == 1
    tied = next(ly for ly in found if ly.name == "lm_head.weight")
    assert tied.kind is LayerKind.EMBEDDING and len(tied.tied_nodes) == 1
    pruned = passes.run(program, [("prune.magnitude", {"sparsity": 0.9})])
    sizes = {ly.name: ly.size for ly in found}
    kept = {name: int(pruned.masks[name].sum()) for name in sizes}
    assert sum(sizes.values()) == 64 * 16 + 16 * 16  # the tied weight counted once
    assert sum(kept.values()) == sum(sizes.values()) - round(0.9 * sum(sizes.values()))
    for name, size in sizes.items():  # uniform: every layer, the tied one too, near 10% density
        assert abs(kept[name] / size - 0.1) < 0.01, (name, kept[name] / size)
    # both names of the tied weight are masked alike, whichever order a module lists them in
    masked = pruned.masked_weights()
    assert torch.equal(masked["embed.weight"], masked["lm_head.weight"])
    restored = pruned.load_into(model)
    assert torch.equal(restored.embed.weight, masked["lm_head.weight"])
    with torch.no_grad():
        torch.testing.assert_close(restored(ids), pruned.module()(ids))

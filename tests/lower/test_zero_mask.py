"""Attention masks built from position ranges: the all-zero one is dropped, a causal one kept, both
against torch eager."""

import pytest
import torch
from torch import nn

from tests.lower.test_conv_rewrite import compile_and_compare


class PositionMaskedAttention(nn.Module):
    """Attention with a mask computed from `arange` as `transformers` builds it: every position passes
    (`causal=False`, ViT's and Wav2Vec2's SDPA path) or the causal triangle does (GPT-2)."""

    def __init__(self, causal: bool, width: int = 16):
        super().__init__()
        self.causal = causal
        self.qkv = nn.Linear(width, 3 * width)

    def forward(self, x):
        tokens = x.shape[1]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        pos = torch.arange(tokens)
        keep = pos[:, None] >= pos[None, :] if self.causal else (pos[None, None, :, None] >= 0)
        mask = torch.where(keep, 0.0, float("-inf")).expand(1, 1, tokens, tokens)
        scores = q[:, None] @ k[:, None].transpose(-1, -2) / 4.0 + mask
        return (scores.softmax(-1) @ v[:, None]).squeeze(1)


def _mask_adds(mod) -> int:
    """The adds in `main` of a (…, tokens, tokens) score matrix."""
    from tvm import relax

    found = []

    def visit(e):
        if isinstance(e, relax.Call) and getattr(e.op, "name", "") == "relax.add":
            shape = [int(s) for s in e.ty.shape]
            found.append(len(shape) == 4 and shape[-1] == shape[-2])

    relax.analysis.post_order_visit(mod["main"], visit)
    return sum(found)


@pytest.mark.parametrize("causal", [False, True])
def test_position_mask_is_dropped_only_where_it_masks_nothing(causal):
    from cascc.frontends.torch import from_module
    from cascc.lower.pipeline import to_relax
    from cascc.lower.zero_mask import DropZeroMasks

    torch.manual_seed(3)
    model, x = PositionMaskedAttention(causal).eval(), torch.randn(1, 9, 16)
    before = to_relax(from_module(model, (x,)).exported)
    assert _mask_adds(before) == 1
    assert _mask_adds(DropZeroMasks()(before)) == (1 if causal else 0)
    compile_and_compare(model, x)

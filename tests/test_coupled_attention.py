"""Attention heads as groups: the smaller attention module compact leaves computes what the masked
nn.MultiheadAttention computes, for every way nn.MultiheadAttention is called, and prunes again."""
import pytest
import torch
from torch import nn

import pruneviz
from pruneviz.attention import PrunedMultiheadAttention, compact_heads, head_scores, row_keeps

KEEP = torch.tensor([True, False, True, False])


def masked(mha: nn.MultiheadAttention, keep: torch.Tensor) -> nn.MultiheadAttention:
    """The attention layer with the heads ``keep`` drops zeroed: q, k, v rows and out_proj columns."""
    with torch.no_grad():
        for pname, rows in row_keeps(mha, keep).items():
            param = getattr(mha, pname)
            param.mul_(rows.reshape(-1, *[1] * (param.dim() - 1)))
        mha.out_proj.weight.mul_(keep.repeat_interleave(mha.head_dim))
    return mha


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("kdim", [None, 12])
@pytest.mark.parametrize("call", ["plain", "padding", "mask3d", "causal", "weights", "unbatched"])
def test_smaller_attention_computes_what_the_masked_one_does(batch_first, kdim, call):
    torch.manual_seed(0)
    mha = masked(nn.MultiheadAttention(16, 4, batch_first=batch_first, kdim=kdim, vdim=kdim).double().eval(), KEEP)
    small = compact_heads(mha, KEEP)
    assert (small.num_heads, small.head_dim, small.out_proj.in_features) == (2, 4, 8)
    n, t = 2, 5
    shape = (n, t) if batch_first else (t, n)
    q = torch.randn(*shape, 16, dtype=torch.float64)
    kv = torch.randn(*shape, kdim or 16, dtype=torch.float64)
    kwargs = {"need_weights": False}
    if call == "padding":
        kwargs["key_padding_mask"] = torch.tensor([[False] * 4 + [True], [False] * 5])
    elif call == "mask3d":  # one slice per (sample, head of the original layer)
        kwargs["attn_mask"] = torch.randn(n * 4, t, t, dtype=torch.float64)
    elif call == "causal":
        kwargs.update(attn_mask=torch.ones(t, t, dtype=torch.bool).triu(1), is_causal=True)
    elif call == "unbatched":
        q, kv = q[0] if batch_first else q[:, 0], kv[0] if batch_first else kv[:, 0]
    if call == "weights":  # the output alone is the same (the weights average over other heads)
        kwargs["need_weights"] = True
    with torch.no_grad():
        torch.testing.assert_close(small(q, kv, kv, **kwargs)[0], mha(q, kv, kv, **kwargs)[0], rtol=1e-12,
                                   atol=1e-12)


def test_head_scores_sum_every_weight_of_a_head():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2)
    expected = torch.zeros(2, dtype=torch.float64)
    for h in range(2):
        rows = torch.cat([torch.arange(h * 4, h * 4 + 4) + offset for offset in (0, 8, 16)])
        expected[h] = mha.in_proj_weight.detach()[rows].abs().sum() + \
            mha.out_proj.weight.detach()[:, h * 4:h * 4 + 4].abs().sum()
    torch.testing.assert_close(head_scores(mha, torch.abs).double(), expected)


class Attend(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(12, 16)
        self.attn = nn.MultiheadAttention(16, 8, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x, mask):
        e = self.embed(x)
        return self.head(self.attn(e, e, e, attn_mask=mask, need_weights=False)[0].mean(1))


def test_a_compacted_attention_prunes_again():
    torch.manual_seed(0)
    model = Attend().double().eval()
    x, mask = torch.randn(2, 7, 12, dtype=torch.float64), torch.randn(16, 7, 7, dtype=torch.float64)
    once = pruneviz.compact(model, pruneviz.Pruner(model, "magnitude", "group").prune(0.5).masks)
    assert isinstance(once.attn, PrunedMultiheadAttention) and once.attn.num_heads == 4
    with torch.no_grad():
        torch.testing.assert_close(once(x, mask), model(x, mask), rtol=1e-12, atol=1e-12)
    pruner = pruneviz.Pruner(once, "magnitude", "group").prune(0.5)
    assert list(pruner.scores) == ["embed", "attn"]  # the embedding's channels are in_proj's input columns
    twice = pruneviz.compact(once, pruner.masks)
    assert twice.attn.num_heads == 2 and twice.attn.kept_heads.tolist() == \
        once.attn.kept_heads[pruner.group_masks()["attn"]].tolist()
    with torch.no_grad():
        torch.testing.assert_close(twice(x, mask), once(x, mask), rtol=1e-12, atol=1e-12)


def test_a_compacted_convnext_says_why_its_stream_is_kept():
    from benchmarks.coupled_models import ConvNeXt, randomized

    model = randomized(ConvNeXt(depths=(1, 1), dims=(8, 16)))
    small = pruneviz.compact(model, pruneviz.Pruner(model, "magnitude", "group").prune(0.5).masks)
    skipped = pruneviz.Pruner(small, "magnitude", "group").skipped
    assert "compact kept at its width" in skipped["features.0.0"]

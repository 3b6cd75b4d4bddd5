"""Attention heads as channel groups: which rows and columns a head of ``nn.MultiheadAttention`` owns, and the
smaller module that stands for one with heads removed.

A head h of an attention layer with model width E and ``head_dim`` d owns d rows of each of the q, k and v
projections (rows h*d .. (h+1)*d - 1 of ``in_proj_weight`` at offsets 0, E and 2E, and of ``in_proj_bias``) and
the same d columns of ``out_proj``. Zero them all and the head's queries and keys are zero, so it attends
uniformly, to values that are zero: its output is zero, and ``out_proj`` does not read it anyway. Removing the
head computes the same thing, as long as ``head_dim`` stays d (the 1/sqrt(d) scaling).

``nn.MultiheadAttention`` cannot hold the result: it requires ``num_heads * head_dim`` to be the width of its
query (and of ``out_proj``), and a pruned layer reads and writes E features through fewer, still d-wide, heads.
So :class:`PrunedMultiheadAttention` takes its place after ``compact``: the same call signature and the same
computation as ``torch.nn.functional.multi_head_attention_forward`` (written here because torch's function
asserts that width equality), with the kept heads' weights only.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

def unsupported_reason(name: str, mha: nn.Module) -> str | None:
    """Why the heads of attention layer ``name`` cannot be removed by the kit (None: they can)."""
    if getattr(mha, "bias_k", None) is not None:
        return f"{name!r} adds learned key/value biases (add_bias_kv=True), which the kit's smaller attention " \
               "does not implement"
    if getattr(mha, "add_zero_attn", False):
        return f"{name!r} attends to an added zero key (add_zero_attn=True), which the kit's smaller attention " \
               "does not implement"
    if mha.num_heads == 1:
        return f"{name!r} has a single head: removing it would leave no attention"
    return None


def projections(mha: nn.Module) -> list[tuple[str, int]]:
    """(parameter name, first row of head 0) for the q, k, v weights and biases of an attention layer."""
    inner = mha.num_heads * mha.head_dim
    if getattr(mha, "_qkv_same_embed_dim", True) and getattr(mha, "in_proj_weight", None) is not None:
        weights = [("in_proj_weight", 0), ("in_proj_weight", inner), ("in_proj_weight", 2 * inner)]
    else:
        weights = [("q_proj_weight", 0), ("k_proj_weight", 0), ("v_proj_weight", 0)]
    biases = [("in_proj_bias", i * inner) for i in range(3)] if mha.in_proj_bias is not None else []
    return weights + biases


def row_keeps(mha: nn.Module, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """{parameter name: bool per row} of the q, k, v projections for one bool per head (``keep``)."""
    rows = keep.repeat_interleave(mha.head_dim)
    out: dict[str, torch.Tensor] = {}
    for pname, first in projections(mha):
        param = getattr(mha, pname)
        vector = out.setdefault(pname, torch.ones(param.shape[0], dtype=torch.bool, device=keep.device))
        vector[first:first + rows.numel()] = rows
    return out


def head_scores(mha: nn.Module, element_scores, norm: str = "l1") -> torch.Tensor:
    """One score per head: the head's element scores summed over every weight it owns (its q, k, v rows and
    out_proj columns; biases are not scored, as a channel's are not), ``norm="l2"``: root of the summed squares."""
    d, heads = mha.head_dim, mha.num_heads
    total = torch.zeros(heads, dtype=torch.float64, device=mha.out_proj.weight.device)
    for pname, first in projections(mha):
        if pname.endswith("bias"):
            continue
        rows = element_scores(getattr(mha, pname).detach())[first:first + heads * d].double()
        total += (rows ** 2 if norm == "l2" else rows).reshape(heads, -1).sum(1)
    cols = element_scores(mha.out_proj.weight.detach()).double()
    total += (cols ** 2 if norm == "l2" else cols).reshape(cols.shape[0], heads, d).sum((0, 2))
    return (total.sqrt() if norm == "l2" else total).to(mha.out_proj.weight.dtype)


class PrunedMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` with some heads removed: reads and writes ``embed_dim`` features through
    ``num_heads`` heads of ``head_dim`` each (``num_heads * head_dim`` may be less than ``embed_dim``).
    ``kept_heads``: which heads of the original it keeps (a 3-D ``attn_mask`` has one slice per original head)."""

    def __init__(self, mha: nn.Module, keep: torch.Tensor, inputs: dict[str, torch.Tensor] | None = None):
        super().__init__()
        widths = {p: int(k.sum()) for p, k in (inputs or {}).items()}
        self.embed_dim = widths.get("in_proj_weight", widths.get("q_proj_weight", mha.embed_dim))
        self.kdim = widths.get("in_proj_weight", widths.get("k_proj_weight", mha.kdim))
        self.vdim = widths.get("in_proj_weight", widths.get("v_proj_weight", mha.vdim))
        self.head_dim, self.batch_first, self.dropout = mha.head_dim, mha.batch_first, mha.dropout
        # a 3-D attn_mask has one slice per head of the layer the user built: which of those are kept
        self.original_heads = getattr(mha, "original_heads", mha.num_heads)
        kept = getattr(mha, "kept_heads", torch.arange(mha.num_heads, device=keep.device))[keep]
        self.num_heads = int(keep.sum())
        self.register_buffer("kept_heads", kept.clone(), persistent=False)
        self._qkv_same_embed_dim = False  # nn.TransformerEncoderLayer's fast path reads it: not for this module
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        rows = keep.repeat_interleave(self.head_dim)
        inner = mha.num_heads * mha.head_dim  # q, k, v rows of the layer it is made from
        weights = [(pname, first) for pname, first in projections(mha) if not pname.endswith("bias")]
        for letter, (pname, first) in zip("qkv", weights):
            weight = getattr(mha, pname)[first:first + inner][rows]
            if pname in (inputs or {}):  # the input features kept (the residual stream's channels)
                weight = weight[:, inputs[pname].to(weight.device)]
            setattr(self, f"{letter}_proj_weight", nn.Parameter(weight.detach().clone(),
                                                                 requires_grad=getattr(mha, pname).requires_grad))
        if mha.in_proj_bias is not None:
            bias = torch.cat([mha.in_proj_bias[i * inner:(i + 1) * inner][rows] for i in range(3)])
            self.in_proj_bias = nn.Parameter(bias.detach().clone(), requires_grad=mha.in_proj_bias.requires_grad)
        else:
            self.register_parameter("in_proj_bias", None)
        out = mha.out_proj
        self.out_proj = nn.Linear(int(rows.sum()), out.out_features, bias=out.bias is not None,
                                  device=out.weight.device, dtype=out.weight.dtype)
        with torch.no_grad():
            self.out_proj.weight.copy_(out.weight[:, rows])
            if out.bias is not None:
                self.out_proj.bias.copy_(out.bias)
        self.out_proj.weight.requires_grad_(out.weight.requires_grad)
        self.train(mha.training)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads} of {self.original_heads}, "
                f"head_dim={self.head_dim}, batch_first={self.batch_first}")

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                average_attn_weights: bool = True, is_causal: bool = False):
        batched = query.dim() == 3
        if self.batch_first and batched:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if not batched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        tgt, bsz, _ = query.shape
        src = key.shape[0]
        heads, d = self.num_heads, self.head_dim
        b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        q = F.linear(query, self.q_proj_weight, b_q)
        k = F.linear(key, self.k_proj_weight, b_k)
        v = F.linear(value, self.v_proj_weight, b_v)
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint (as nn.MultiheadAttention)")
        mask = _float_mask(attn_mask, query.dtype)
        if mask is not None:
            if mask.dim() == 3:  # one slice per (sample, original head): the kept heads' slices
                mask = mask.reshape(bsz, self.original_heads, tgt, src)[:, self.kept_heads].reshape(-1, tgt, src)
            else:
                mask = mask.unsqueeze(0)
        padding = _float_mask(key_padding_mask, query.dtype)
        if padding is not None:
            padding = padding.view(bsz, 1, 1, src).expand(-1, heads, -1, -1).reshape(bsz * heads, 1, src)
            mask = padding if mask is None else mask + padding
        q = q.reshape(tgt, bsz * heads, d).transpose(0, 1)
        k = k.reshape(src, bsz * heads, d).transpose(0, 1)
        v = v.reshape(src, bsz * heads, d).transpose(0, 1)
        scores = q * math.sqrt(1.0 / d)
        scores = torch.baddbmm(mask, scores, k.transpose(-2, -1)) if mask is not None else \
            torch.bmm(scores, k.transpose(-2, -1))
        weights = torch.softmax(scores, dim=-1)
        if self.training and self.dropout > 0:
            weights = F.dropout(weights, p=self.dropout)
        out = torch.bmm(weights, v).transpose(0, 1).reshape(tgt * bsz, heads * d)
        out = self.out_proj(out).view(tgt, bsz, -1)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        if not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        weights = weights.view(bsz, heads, tgt, src)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights if batched else weights.squeeze(0))


def _float_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A bool mask (True: not attended) as the additive float mask torch's attention uses."""
    if mask is None or mask.is_floating_point():
        return mask
    return torch.zeros_like(mask, dtype=dtype).masked_fill_(mask, float("-inf"))


def compact_heads(mha: nn.Module, keep: torch.Tensor, inputs: dict[str, torch.Tensor] | None = None
                  ) -> PrunedMultiheadAttention:
    """The smaller attention module without the heads ``keep`` drops and, for each q, k, v projection weight
    named in ``inputs``, the input columns it drops (``mha`` is left as it was)."""
    return PrunedMultiheadAttention(mha, keep.to(mha.out_proj.weight.device), inputs)


ATTENTION = (nn.MultiheadAttention, PrunedMultiheadAttention)  # layers whose heads are groups

"""Latency comparisons in turns: their table, their errors, and the sentence that says whether to trust them."""
import pandas as pd
import pytest
import torch
from torch import nn

import pruneviz
from pruneviz.timing import compare_latency, latency_table, masked_and_compacted, reliable, verdict

from .conftest import same_state, state_of


def small_models():
    torch.manual_seed(0)
    wide = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10))
    narrow = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    return {"wide": wide.train(), "narrow": narrow.eval()}


def test_compare_latency_table_and_modes_left_as_they_were():
    models = small_models()
    table = compare_latency(models, torch.rand(4, 64), rounds=3, runs=3)
    assert list(table.model) == ["wide", "narrow"]
    base = table.iloc[0]
    assert (base.speedup, base.speedup_low, base.speedup_high, base.spread) == (1.0, 1.0, 1.0, 0.0)
    assert (table.latency_ms > 0).all() and (table.rounds == 3).all()
    assert (table.speedup_low <= table.speedup).all() and (table.speedup <= table.speedup_high).all()
    assert models["wide"].training and not models["narrow"].training
    other = compare_latency(models, torch.rand(4, 64), baseline="narrow", rounds=1, runs=1)
    assert other.set_index("model").speedup["narrow"] == 1.0


@pytest.mark.parametrize("kwargs, words", [
    ({"baseline": "dense"}, "baseline 'dense' is not one of the models: 'wide', 'narrow'"),
    ({"rounds": 0}, "rounds must be a whole number >= 1, got 0"),
    ({"rounds": True}, "rounds must be a whole number"),
])
def test_bad_arguments_say_what_was_given(kwargs, words):
    with pytest.raises(ValueError, match=words):
        compare_latency(small_models(), torch.rand(1, 64), **kwargs)
    with pytest.raises(ValueError, match="at least one model"):
        compare_latency({}, torch.rand(1, 64))


def test_verdict_names_the_largest_spread():
    table = pd.DataFrame({"model": ["dense", "a", "b"], "spread": [0.0, 0.04, 0.08]})
    assert reliable(table) and verdict(table).startswith("The rounds agree: every speed-up's interquartile range "
                                                         "is within 8 %")
    table.loc[2, "spread"] = 0.3
    assert not reliable(table)
    assert verdict(table).startswith("The rounds disagree: b's per-round speed-ups spread over 30 %")
    assert reliable(table, max_spread=0.5)


def test_masked_and_compacted_keeps_the_dense_model(cnn):
    before = state_of(cnn)
    models = masked_and_compacted(cnn)
    assert same_state(before, state_of(cnn)) and models["dense"] is cnn
    assert list(models) == ["dense", "element 50 % (zeros)", "element 90 % (zeros)", "2:4 (zeros)",
                            "channel 50 % (zeros)", "channel 50 % (compacted)"]
    assert pruneviz.sparsity(models["element 90 % (zeros)"]) == pytest.approx(0.9, abs=0.01)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(models["channel 50 % (compacted)"](x), models["channel 50 % (zeros)"](x),
                                   rtol=1e-4, atol=1e-5)


def test_latency_table_counts_dense_and_sparse_macs(cnn):
    models = {k: v for k, v in masked_and_compacted(cnn).items() if k in ("dense", "element 90 % (zeros)",
                                                                         "channel 50 % (compacted)")}
    table = latency_table(models, torch.rand(1, 1, 8, 8), batches=(1, 2), rounds=1, runs={1: 1, 2: 1})
    assert list(table.batch) == [1, 1, 1, 2, 2, 2]
    rows = table[table.batch == 1].set_index("model")
    assert rows.mac_reduction["element 90 % (zeros)"] == 1.0
    assert rows.sparse_mac_reduction["element 90 % (zeros)"] == pytest.approx(10, rel=0.01)
    assert rows.mac_reduction["channel 50 % (compacted)"] == pytest.approx(3.96, abs=0.01)

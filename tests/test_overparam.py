"""The over-parameterization experiment: fresh re-initialisation, and pruned + fine-tuned vs from scratch."""
import pytest
import torch

import pruneviz
from pruneviz.overparam import pruned_vs_scratch, reinitialized

from .conftest import same_state, state_of


def test_reinitialized_is_a_fresh_model_of_the_same_shape(mlp):
    before = state_of(mlp)
    rng = torch.get_rng_state()
    fresh = reinitialized(mlp, seed=3)
    assert torch.equal(rng, torch.get_rng_state()), "the global random state moved"
    assert same_state(before, state_of(mlp))
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in before.items()}
    assert not torch.equal(fresh.fc1.weight, mlp.fc1.weight)
    assert same_state(state_of(fresh), state_of(reinitialized(mlp, seed=3)))
    assert not same_state(state_of(fresh), state_of(reinitialized(mlp, seed=4)))


def test_pruned_vs_scratch_rows(mlp, digits):
    train, test = digits.train, digits.test
    small_train = pruneviz.data.as_tensors(train, limit=200)
    before = state_of(mlp)
    table = pruned_vs_scratch(mlp, small_train, test, sparsities=[0.75], finetune_epochs=1, scratch_epochs=1,
                              seeds=[0, 1])
    assert same_state(before, state_of(mlp))
    assert list(table.method) == ["pruned", "pruned + fine-tuned", "from scratch", "pruned + fine-tuned",
                                  "from scratch"]
    expected = pruneviz.count_parameters(
        pruneviz.compact(mlp, pruneviz.Pruner(mlp, "magnitude", "channel").prune(0.75).masks))
    assert set(table.parameters) == {expected}
    pruned = table[table.method == "pruned"].accuracy.item()
    mlp_copy = pruneviz.zoo.load("digits-mlp", device="cpu")
    pruner = pruneviz.Pruner(mlp_copy, "magnitude", "channel").prune(0.75)
    assert pruned == pytest.approx(pruneviz.evaluate(mlp_copy, test))
    assert table.accuracy.between(0, 1).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pruned_vs_scratch(mlp, small_train, test, sparsities=[1.5])
    pruner.restore()

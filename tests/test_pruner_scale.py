"""A re-prune at the lab's scale: work that grows with what changed, and a Pruner of bounded size.

A slider move re-prunes from the selection the model already holds: only the weights whose keep flipped are
written, and the counts (sparsity, nonzero entries) and the threshold come from the selection, not from a pass
over the model. These tests hold that to the one standard that matters: after any sequence of moves the model
and the masks are bit for bit those of a fresh prune at the final ratio, and every count is exact.
"""
import copy
import random
import warnings

import pytest
import torch
from torch import nn

from pruneviz import ModelChangedError, Pruner

GRANULARITIES = ["element", "channel", "2:4", "vector", "kernel"]


def model_with_ties_and_zeros(seed: int = 0) -> nn.Module:
    """Convs with BatchNorm and biases, and a Linear: equal magnitudes across layers (ties) and weights already
    zero in the dense model (a pruned weight there writes no change, a nonzero count must still be exact)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16),
                          nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4 * 4, 24), nn.ReLU(), nn.Linear(24, 8))
    with torch.no_grad():
        model[0].weight[0, :2] = 0.0
        model[3].weight.view(-1)[:200] = 0.125
        model[3].weight.view(-1)[200:260] = -0.125
        model[7].weight.view(-1)[:150] = 0.125
        model[7].weight.view(-1)[150:200] = 0.0
        model[1].bias[:2] = 0.0
        for bn in (model[1], model[4]):
            bn.weight.uniform_(0.5, 1.5)
    return model.eval()


def fresh(dense: nn.Module, granularity: str, scope: str, sparsity) -> Pruner:
    return Pruner(copy.deepcopy(dense), "magnitude", granularity, scope).prune(sparsity)


def assert_same(pruner: Pruner, reference: Pruner) -> None:
    for (key, value), (_, expected) in zip(pruner.model.state_dict().items(), reference.model.state_dict().items()):
        assert torch.equal(value, expected), key
        assert torch.equal(value.view(torch.int8) if value.is_floating_point() else value,
                           expected.view(torch.int8) if expected.is_floating_point() else expected), key  # +0 vs -0
    for name in reference.masks:
        assert torch.equal(pruner.masks[name], reference.masks[name]), name
    assert pruner.sparsity() == reference.sparsity()
    assert pruner.layer_sparsity() == pytest.approx(reference.layer_sparsity(), abs=1e-6)
    assert pruner.guarded == reference.guarded


def assert_counts_exact(pruner: Pruner) -> None:
    counts = pruner.nonzero_counts()
    assert set(counts) == set(pruner._entries)
    for key, count in counts.items():
        assert count == int(torch.count_nonzero(pruner.model.get_parameter(key))), key
    for name, mask in pruner.masks.items():
        assert pruner.layer_sparsity()[name] == pytest.approx(1 - float(mask.double().mean()), abs=1e-12)


def assert_threshold_is_the_largest_pruned_score(pruner: Pruner) -> None:
    group_masks = pruner.group_masks()
    for name in pruner.layers:
        pruned = pruner.scores[name][~group_masks[name]]
        expected = float(pruned.max()) if pruned.numel() else None
        assert pruner.threshold(name) == expected, name


@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_any_sequence_of_moves_leaves_what_a_fresh_prune_at_the_last_ratio_leaves(granularity, scope):
    dense = model_with_ties_and_zeros()
    pruner = Pruner(copy.deepcopy(dense), "magnitude", granularity, scope)
    moves = random.Random(f"{granularity}{scope}")
    small_moves = partial_small = jumps = full_jumps = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the global guard's note on channels
        for step in range(25):
            before = pruner.ratios[next(iter(pruner.ratios))] if step else None
            if scope == "local" and step % 5 == 4:  # a dict of ratios: some layers move, the others go to 0
                before = None
                sparsity = {name: round(moves.random(), 2) for name in pruner.layers if moves.random() < 0.6}
            else:
                sparsity = round(min(1.0, max(0.0, (pruner.ratios[next(iter(pruner.ratios))] if step else 0.5)
                                             + moves.choice([-0.2, -0.05, -0.01, 0.01, 0.03, 0.2, 0.0]))), 2)
            pruner.prune(sparsity)
            if before is not None and step % 5 != 0:  # after a dict, the layers' ratios differ: no one move
                move = abs(sparsity - before)
                if move <= 0.03:  # a drag: only what flipped is written
                    small_moves, partial_small = small_moves + 1, partial_small + (pruner.changed is not None)
                elif move >= 0.2 and (scope == "local" or granularity == "element"):
                    # a jump past an eighth of the groups: one full masked write is cheaper (a global ratio of
                    # weights over groups of unequal sizes is another share of the groups)
                    jumps, full_jumps = jumps + 1, full_jumps + (pruner.changed is None)
            reference = fresh(dense, granularity, scope, sparsity)
            assert_same(pruner, reference)
            assert_counts_exact(pruner)
            if not (scope == "global" and granularity == "2:4") or step % 6 == 0:
                assert_threshold_is_the_largest_pruned_score(pruner)
    assert small_moves >= 5 and partial_small == small_moves
    assert full_jumps == jumps


@pytest.mark.parametrize("scope", ["local", "global"])
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_a_small_move_writes_the_flipped_weights_and_nothing_else(granularity, scope):
    model = model_with_ties_and_zeros()
    pruner = Pruner(model, "magnitude", granularity, scope).prune(0.5)
    assert pruner.changed is None and pruner.last_write_count == sum(e.param.numel() for e in pruner._entries.values())
    before = {name: mask.clone() for name, mask in pruner.masks.items()}
    values = {key: p.detach().clone() for key, p in model.named_parameters()}
    pruner.prune(0.53)
    flipped = {name: (pruner.masks[name] != before[name]).reshape(-1).nonzero().reshape(-1) for name in before}
    for name in pruner.layers:
        assert torch.equal(pruner.changed[name], flipped[name]), name
    weights = sum(index.numel() for index in flipped.values())
    assert 0 < weights < sum(m.numel() for m in before.values()) // 5
    expected, may_change = weights, {f"{name}.weight" for name, index in flipped.items() if index.numel()}
    if granularity == "channel":  # a channel's bias and BatchNorm gamma and beta go with it
        for name in pruner.layers:
            channel_flips = int((pruner.masks[name].flatten(1).any(1) != before[name].flatten(1).any(1)).sum())
            norm = pruner._infos[name].norm
            keys = [k for k in (f"{name}.bias", f"{norm}.weight", f"{norm}.bias") if k in pruner._entries]
            expected += channel_flips * len(keys)
            may_change |= set(keys) if channel_flips else set()
    assert pruner.last_write_count == expected
    assert {key for key, p in model.named_parameters() if not torch.equal(p.detach(), values[key])} <= may_change


def test_a_move_back_and_forth_on_a_large_layer_writes_a_hundredth_of_it():
    model = nn.Sequential(nn.Linear(1000, 1000))
    pruner = Pruner(model, "magnitude", "element", "global").prune(0.5)
    pruner.prune(0.51)
    assert pruner.last_write_count == 10_000 == pruner.changed["0"].numel()
    pruner.prune(0.5)
    assert pruner.last_write_count == 10_000
    assert pruner.nonzero_counts()["0.weight"] == 500_000 == int(torch.count_nonzero(model[0].weight))


@pytest.mark.parametrize("scope", ["local", "global"])
def test_threshold_is_the_magnitude_below_which_weights_went(scope):
    model = model_with_ties_and_zeros()
    pruner = Pruner(model, "magnitude", "element", scope)
    assert all(pruner.threshold(name) is None for name in pruner.layers)
    for sparsity in (0.3, 0.61, 0.6, 0.05, 0.95, 0.9):
        pruner.prune(sparsity)
        for name in pruner.layers:
            dense, mask = pruner.dense_weight(name), pruner.masks[name]
            expected = float(dense[~mask].abs().max()) if (~mask).any() else None
            assert pruner.threshold(name) == expected, (sparsity, name)
    pruner.prune(0.0)
    assert all(pruner.threshold(name) is None for name in pruner.layers)
    with pytest.raises(ValueError, match="'nope'.*valid"):
        pruner.threshold("nope")


def test_threshold_and_counts_follow_masks_set_by_hand():
    """reconstruct() and other code may put masks back by hand: reading never trusts a stale selection."""
    pruner = Pruner(model_with_ties_and_zeros(), "magnitude", "element").prune(0.5)
    pruner.masks = {name: torch.ones_like(mask) for name, mask in pruner.masks.items()}
    assert pruner.sparsity() == 0.0
    assert all(pruner.threshold(name) is None for name in pruner.layers)


@pytest.mark.parametrize("scope", ["local", "global"])
def test_a_pruner_holds_at_most_13_bytes_per_weight(scope):
    """Dense copy 4, scores 4, int32 order 4, mask 1 at magnitude element: nothing else per weight."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1000, 800), nn.ReLU(), nn.Linear(800, 250))
    weights = 1000 * 800 + 800 * 250
    pruner = Pruner(model, "magnitude", "element", scope).prune(0.5)
    pruner.prune(0.52)
    used = pruner.memory_bytes()
    assert 13 * weights <= used <= 13 * weights + 4096, used / weights
    other = Pruner(model, "magnitude", "element", scope)  # the dense copies are the first Pruner's
    assert other.memory_bytes() <= 9 * weights + 4096


def test_a_change_behind_the_pruners_back_after_a_partial_write_is_refused():
    model = model_with_ties_and_zeros()
    pruner = Pruner(model, "magnitude", "element", "global").prune(0.5).prune(0.51)
    assert pruner.changed is not None
    with torch.no_grad():
        model[7].weight[3, 5] += 1.0
    held = {key: p.detach().clone() for key, p in model.named_parameters()}
    with pytest.raises(ModelChangedError, match="7.weight"):
        pruner.prune(0.52)
    assert all(torch.equal(p.detach(), held[key]) for key, p in model.named_parameters())
    assert pruner.nonzero_counts()["7.weight"] == int(torch.count_nonzero(model[7].weight))


def test_a_write_through_data_after_a_partial_write_is_refused():
    model = model_with_ties_and_zeros()
    pruner = Pruner(model, "magnitude", "element").prune(0.5).prune(0.49)
    model[3].weight.data.mul_(2.0)  # skips the version counter; the sampled values differ
    with pytest.raises(ModelChangedError, match="3.weight"):
        pruner.prune(0.48)


def test_another_pruners_write_in_between_takes_the_full_path_and_stays_exact():
    dense = model_with_ties_and_zeros()
    model = copy.deepcopy(dense)
    first = Pruner(model, "magnitude", "element").prune(0.5)
    second = Pruner(model, "magnitude", "channel", "global")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        second.prune(0.3)
    first.prune(0.52)
    assert first.changed is None  # the model held the other Pruner's prune: all written again
    reference = fresh(dense, "element", "local", 0.52)
    for name in first.layers:  # the biases and BatchNorm stay as the channel Pruner left them: not first's
        assert torch.equal(first.layers[name].weight, reference.layers[name].weight)
        assert torch.equal(first.masks[name], reference.masks[name])
    first.prune(0.53)
    assert first.changed is not None
    assert_counts_exact(first)
    first.restore()
    assert first.changed is None and first.sparsity() == 0.0
    assert all(torch.equal(first.layers[n].weight, dense.get_submodule(n).weight) for n in first.layers)


def test_a_large_move_of_some_layers_leaves_the_other_layers_unwritten():
    """A jump of some layers' ratios (a dict move) writes only those layers, whatever its size: a layer not
    written keeps its version, so the widgets' cached activations before it stay valid."""
    model = model_with_ties_and_zeros()
    pruner = Pruner(model, "magnitude", "element", "local")
    names = list(pruner.layers)
    pruner.prune({names[-2]: 0.2})
    versions = {name: pruner.layers[name].weight._version for name in names}
    pruner.prune({names[-2]: 0.9, names[-1]: 0.9})  # most of both layers flips
    for name in names[:-2]:
        assert pruner.layers[name].weight._version == versions[name], name
    reference = fresh(model_with_ties_and_zeros(), "element", "local", {names[-2]: 0.9, names[-1]: 0.9})
    assert_same(pruner, reference)

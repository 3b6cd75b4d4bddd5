"""Pruning schedules (one-shot, iterative, AGP) and the runner that follows them."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pruneviz import AGP, Iterative, OneShot, Pruner, run_schedule
import pruneviz
from pruneviz.schedules import compare_schedules, lecture_schedules, schedule_sweep

from .conftest import same_state, state_of


@st.composite
def agp_schedules(draw):
    final = draw(st.floats(0.0, 1.0))
    initial = draw(st.floats(0.0, final))
    return AGP(final, initial, start=draw(st.integers(0, 30)), prunes=draw(st.integers(1, 12)),
               every=draw(st.integers(1, 9)), finetune_steps=draw(st.integers(0, 20)))


@settings(max_examples=80, deadline=None)
@given(agp_schedules())
def test_agp_hits_its_ends_at_the_right_steps_and_is_monotone(agp):
    steps, values = agp.points()
    assert steps == list(range(agp.total_steps + 1))
    assert agp.sparsity_at(agp.start) == pytest.approx(agp.initial)
    assert agp.sparsity_at(agp.start + agp.prunes * agp.every) == pytest.approx(agp.final)
    assert agp.sparsity_at(agp.total_steps) == pytest.approx(agp.final)
    assert all(v == 0.0 for t, v in zip(steps, values) if t < agp.start)
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))
    # it moves only every `every` steps from the start, along Zhu & Gupta's cubic
    for t in agp.prune_steps():
        assert t == 0 or (t - agp.start) % agp.every == 0
    t = agp.start + agp.every
    expected = agp.final + (agp.initial - agp.final) * (1 - agp.every / (agp.prunes * agp.every)) ** 3
    assert agp.sparsity_at(t) == pytest.approx(expected)


def test_agp_cubic_prunes_fast_then_slow():
    agp = AGP(0.9, prunes=10, every=5, finetune_steps=0)
    _, values = agp.points()
    increments = [b - a for a, b in zip(values[::5], values[5::5])]
    assert increments[0] > increments[-1] > 0
    assert sum(increments) == pytest.approx(0.9)


def test_iterative_and_one_shot_points():
    it = Iterative(0.9, iterations=3, steps_per_iteration=10)  # geometric: density 0.1 ** (k / 3)
    assert it.prune_steps() == [0, 10, 20]
    assert [it.sparsity_at(t) for t in (0, 10, 20, 30)] == pytest.approx([1 - 0.1 ** (1 / 3), 1 - 0.1 ** (2 / 3),
                                                                         0.9, 0.9])
    linear = Iterative(0.9, iterations=3, steps_per_iteration=10, spacing="linear")
    assert [linear.sparsity_at(t) for t in (0, 10, 20, 30)] == pytest.approx([0.3, 0.6, 0.9, 0.9])
    one = OneShot(0.8, finetune_steps=7)
    assert one.points() == (list(range(8)), [0.8] * 8)
    assert one.prune_steps() == [0]


@pytest.mark.parametrize("make,match", [
    (lambda: OneShot(1.5), r"\[0, 1\]"), (lambda: AGP(0.5, initial=0.6), "initial"),
    (lambda: AGP(0.5, prunes=0), "prunes"), (lambda: AGP(0.5, every=-1), "every"),
    (lambda: Iterative(0.5, iterations=0), "iterations"), (lambda: Iterative(float("nan")), r"\[0, 1\]"),
    (lambda: OneShot(0.5, finetune_steps=1.5), "finetune_steps"),
    (lambda: Iterative(0.5, spacing="log"), "spacing 'log'; valid choices: 'geometric', 'linear'"),
    (lambda: lecture_schedules(0.5, budget=70), "multiple of rounds"),
    (lambda: lecture_schedules(0.5, budget=9, rounds=3), "at least 10 steps")])
def test_bad_schedules(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_run_schedule_prunes_where_the_schedule_says_and_keeps_earlier_pruned_weights(digits, mlp):
    schedule = AGP(0.8, prunes=4, every=5, finetune_steps=5)
    pruner = Pruner(mlp, "magnitude", "element")
    seen = []
    prune = pruner.prune

    def recording_prune(ratio):
        out = prune(ratio)
        seen.append({n: m.clone() for n, m in pruner.masks.items()})
        return out

    pruner.prune = recording_prune
    history = run_schedule(schedule, pruner, digits.train, digits.test, progress=False)
    events = history[history.event == "prune"]
    assert list(events.step) == schedule.prune_steps()
    assert history.sparsity.tolist() == pytest.approx([schedule.sparsity_at(t) for t in history.step], abs=1e-3)
    for before, after in zip(seen, seen[1:]):  # what was pruned stays pruned (rescore scores it as zero)
        assert all(not (after[n] & ~before[n]).any() for n in before)
    zeros = [m.weight[~pruner.masks[n]] for n, m in pruner.layers.items()]
    assert all(int(torch.count_nonzero(z)) == 0 for z in zeros)
    assert history.accuracy.notna().all()


def test_run_schedule_bad_input(digits, mlp):
    pruner = Pruner(mlp)
    with pytest.raises(ValueError, match="'sgd', 'adam', 'adamw'"):
        run_schedule(OneShot(0.5), pruner, digits.train, optimizer="lbfgs", progress=False)
    with pytest.raises(ValueError, match="OneShot, Iterative or AGP"):
        run_schedule(0.5, pruner, digits.train, progress=False)
    assert pruner.sparsity() == 0.0


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 1.0), st.integers(1, 8))
def test_geometric_rounds_remove_the_same_fraction_of_the_survivors(final, rounds):
    it = Iterative(final, rounds, 5)
    targets = it.round_targets()
    assert targets[-1] == final and all(b >= a for a, b in zip(targets, targets[1:]))
    removed = it.survivors_removed()
    if final < 1.0:
        assert removed == pytest.approx([1 - (1 - final) ** (1 / rounds)] * rounds, rel=1e-6, abs=1e-9)
    assert it.total_steps == 5 * rounds and it.points()[1][-1] == final


def test_lecture_schedules_share_one_budget():
    for budget, rounds in ((69, 3), (30, 5), (10, 1)):
        schedules = lecture_schedules(0.9, budget, rounds)
        assert [s.total_steps for s in schedules.values()] == [0, budget, budget, budget]
        assert all(s.sparsity_at(s.total_steps) == pytest.approx(0.9) for s in schedules.values())


def test_lecture_claim_at_95_percent(digits, mlp):
    """benchmarks/bench_finetune.py and notebook 08 at 95 %, equal budget (69 steps), digits-mlp, seed 0:
    prune only < one-shot + fine-tune ~ iterative (3 geometric rounds) < AGP."""
    before = state_of(mlp)
    table = compare_schedules(mlp, lecture_schedules(0.95), digits.train, digits.test, progress=False)
    assert same_state(before, state_of(mlp))
    assert table.sparsity.tolist() == pytest.approx([0.95] * 4, abs=1e-3)
    assert table.steps.tolist() == [0, 69, 69, 69]
    acc = dict(zip(table.schedule, table.accuracy))
    assert acc["prune only"] < acc["one-shot + fine-tune"] - 0.5, acc
    assert abs(acc["iterative (3 rounds)"] - acc["one-shot + fine-tune"]) <= 2 / 360 + 1e-6, acc
    assert acc["AGP"] > max(acc["one-shot + fine-tune"], acc["iterative (3 rounds)"]) + 5 / 360, acc


def test_schedule_sweep_rows_and_bad_names(digits, mlp):
    before = state_of(mlp)
    sweep = schedule_sweep(mlp, [0.5], digits.train, digits.test, budget=30, seeds=(0, 1), progress=False,
                           include=["prune only", "AGP"])
    assert same_state(before, state_of(mlp))
    assert list(sweep.columns) == ["target", "seed", "schedule", "sparsity", "steps", "accuracy", "loss"]
    assert sweep.schedule.tolist() == ["prune only", "AGP"] * 2 and sweep.seed.tolist() == [0, 0, 1, 1]
    dense = pruneviz.evaluate(mlp, digits.test)
    assert (sweep.loss == dense - sweep.accuracy).all()
    with pytest.raises(ValueError, match="unknown schedule 'agp'"):
        schedule_sweep(mlp, [0.5], digits.train, digits.test, include=["agp"], progress=False)


def test_check_agp_sparsity(capsys):
    from pruneviz.coursework.schedules import check_agp_sparsity

    def smooth(step, initial, final, start, prunes, every):  # forgets that AGP prunes only every dt steps
        x = min(1.0, max(0, step - start) / (prunes * every))
        return 0.0 if step < start else final + (initial - final) * (1 - x) ** 3

    from pruneviz.coursework import CheckFailed

    def reference(step, initial, final, start, prunes, every):  # written out, not asking pruneviz.AGP
        if step < start:
            return 0.0
        return final + (initial - final) * (1 - min(prunes, (step - start) // every) / prunes) ** 3

    assert check_agp_sparsity(reference)
    with pytest.raises(CheckFailed, match="between prunes"):
        check_agp_sparsity(smooth)
    with pytest.raises(CheckFailed, match="returned None"):
        check_agp_sparsity(lambda *args: None)

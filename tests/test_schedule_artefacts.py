"""The artefact paths notebook 08 reads its fine-tuning through: finetuned() and schedule_history(), and Han et
al.'s iterative schedule in lecture_schedules (the claims themselves: tests/test_claims_08.py)."""
import pytest
import torch

import pruneviz
from pruneviz.finetune import finetuned
from pruneviz.masked_loop import revived_weights
from pruneviz.schedules import Iterative, lecture_schedules, schedule_history

from .conftest import same_state, state_of


def test_han_retraining_adds_iterative_rounds_each_as_long_as_the_budget():
    plain, han = lecture_schedules(0.9, 60), lecture_schedules(0.9, 60, han_retraining=True)
    assert list(han) == [*plain, "iterative (3 rounds x 60)"]
    assert han["iterative (3 rounds x 60)"] == Iterative(0.9, 3, 60)
    assert han["iterative (3 rounds x 60)"].total_steps == 3 * han["one-shot + fine-tune"].total_steps
    assert lecture_schedules(0.9, 60, rounds=2, han_retraining=True)["iterative (2 rounds x 60)"].total_steps == 120


@pytest.mark.parametrize("masked", [True, False])
def test_finetuned_trains_a_copy_and_leaves_the_model_as_it_was(mlp, digits, masked):
    before = state_of(mlp)
    tuned, pruner = finetuned(mlp, digits.train, 0.9, masked=masked, steps=3, optimizer="adam", live=True)
    assert same_state(state_of(mlp), before)
    assert tuned is not mlp and pruner.model is tuned
    assert not torch.equal(tuned.fc1.weight, before["fc1.weight"])
    assert (revived_weights(pruner) == 0) == masked  # masked: the zeros held; unmasked: Adam moves them


def test_finetuned_refuses_a_bad_sparsity_and_leaves_the_model(mlp, digits):
    before = state_of(mlp)
    with pytest.raises(ValueError, match="1.5"):
        finetuned(mlp, digits.train, 1.5, steps=3, live=True)
    assert same_state(state_of(mlp), before)


def test_schedule_history_is_run_schedule_and_gives_the_weights_back(mlp, digits):
    before = state_of(mlp)
    schedule = Iterative(0.8, 2, 2)
    history = schedule_history(mlp, schedule, digits.train, digits.test, optimizer="adam", progress=False)
    assert same_state(state_of(mlp), before)
    direct = pruneviz.run_schedule(schedule, pruneviz.Pruner(mlp, "magnitude", "element", scope="global"),
                                   digits.train, digits.test, optimizer="adam", progress=False)
    assert history.equals(direct)
    assert history.event.tolist() == ["prune", "prune", "end"]

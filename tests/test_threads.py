"""Promise 9's first half: what the kit trains comes out the same on any core count.

A student's 8-core laptop and CI's 2 cores must get the stored outputs of the notebooks that train. torch's
float reductions split over more threads round differently, so training pins itself to one thread
(pruneviz.training.torch_threads); this checks it against torch's thread setting as a user's machine has it.
"""
import pytest
import torch

import pruneviz
from pruneviz.training import torch_threads


def _train_under(threads: int, model_name: str, digits) -> dict[str, torch.Tensor]:
    with torch_threads(threads):  # what the machine (or OMP_NUM_THREADS) would set
        torch.manual_seed(0)
        model = pruneviz.zoo.build(model_name)
        pruneviz.train(model, digits.train, epochs=2, optimizer="sgd", lr=0.05, progress=False)
        pruner = pruneviz.Pruner(model, "magnitude", "element")
        pruner.prune(0.5)
        pruneviz.finetune(model, digits.train, pruner=pruner, steps=5, progress=False)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("model_name", ["digits-mlp", "digits-cnn"])
def test_training_and_finetuning_give_the_same_weights_on_one_and_three_threads(model_name, digits):
    one, three = _train_under(1, model_name, digits), _train_under(3, model_name, digits)
    assert all(torch.equal(one[k], three[k]) for k in one), \
        [k for k in one if not torch.equal(one[k], three[k])]


def test_training_leaves_the_thread_setting_as_it_was(digits):
    with torch_threads(3):
        pruneviz.train(pruneviz.zoo.build("digits-mlp"), digits.train, epochs=1, progress=False)
        assert torch.get_num_threads() == 3


def test_threads_none_uses_the_callers_setting(digits):
    seen = []
    with torch_threads(2):
        pruneviz.train(pruneviz.zoo.build("digits-mlp"), digits.train, steps=1, threads=None, progress=False,
                       on_step=lambda: seen.append(torch.get_num_threads()))
    assert seen == [2]

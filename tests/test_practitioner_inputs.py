"""Beyond issue 13: inputs a practitioner brings that used to give a number that means nothing, or an error
from deep inside torch. Each is refused with what was given and what is valid, and the model is left as it was."""
import pytest
import torch

import pruneviz
from pruneviz import Pruner, evaluate, finetune, sensitivity_scan

from .conftest import same_state, state_of
from .practitioner_models import build, calibration

X, Y = calibration()
BAD_TARGETS = {
    "out of range": (Y + 10, r"targets run from 10 to 13, but the model outputs 4 classes \(valid targets: 0 to 3\)"),
    "negative": (Y - 5, r"targets run from -5 to -2, but the model outputs 4 classes"),
    "float": (Y.float(), r"needs class indices as targets \(an integer tensor\), got torch.float32 targets"),
    "bool": (Y > 1, r"got torch.bool targets"),
    "one-hot": (torch.nn.functional.one_hot(Y, 4), r"one class index per sample as targets \(shape \[N\]\), got "
                                                   r"targets shaped \(48, 4\) \(one-hot\? use y.argmax\(1\)\)"),
}


def _refused(model, call, match, error=ValueError):
    before = state_of(model)
    mode = model.training
    with pytest.raises(error, match=match):
        call()
    assert same_state(before, state_of(model)), "a refused call changed the model"
    assert model.training == mode


@pytest.mark.parametrize("case", BAD_TARGETS)
def test_accuracies_refuse_targets_that_are_not_class_indices_of_the_model(case):
    """An accuracy against labels the model cannot output used to be 0.0 (out of range) or a comparison of floats:
    evaluate, the sensitivity scan (cached and naive), block importance and the widgets' evaluator share one
    accuracy() that refuses them."""
    from pruneviz.widgets.evaluator import CachedEvaluator

    targets, match = BAD_TARGETS[case]
    model = build("conv_bn")
    _refused(model, lambda: evaluate(model, (X, targets)), match)
    for cached in (True, False):
        _refused(model, lambda: sensitivity_scan(model, (X, targets), sparsities=[0.5], progress=False,
                                                 cached=cached), match)
    _refused(model, lambda: pruneviz.block_importance(model, (X, targets), blocks=[]), match)
    _refused(model, lambda: CachedEvaluator(model, (X, targets)).accuracy(), match)


def test_valid_targets_give_the_same_accuracy_everywhere():
    model = build("conv_bn")
    with torch.no_grad():
        expected = float((model(X).argmax(1) == Y).float().mean())
    assert evaluate(model, (X, Y)) == expected
    assert evaluate(model, (X, Y.int())) == expected  # any integer dtype is a class index
    scan = sensitivity_scan(model, (X, Y), sparsities=[0.0], progress=False)
    assert (scan.accuracy == expected).all()


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_evaluate_batch_size_is_a_whole_number(batch_size):
    """batch_size=-1 used to say 'data is empty', 0 'range() arg 3 must not be zero'."""
    model = build("conv_bn")
    _refused(model, lambda: evaluate(model, (X, Y), batch_size=batch_size),
             rf"batch_size must be a whole number >= 1, got {batch_size!r}")


def test_training_a_frozen_model_says_so():
    """Every parameter frozen: torch's 'optimizer got an empty parameter list' told nothing."""
    model = build("conv_bn")
    for param in model.parameters():
        param.requires_grad_(False)
    _refused(model, lambda: pruneviz.train(model, (X, Y), epochs=1, progress=False),
             r"every parameter of the model has requires_grad=False \(Sequential is frozen\)")
    pruner = Pruner(model).prune(0.5)
    _refused(model, lambda: finetune(model, (X, Y), pruner=pruner, epochs=1, progress=False), "requires_grad=False")

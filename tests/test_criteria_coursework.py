"""The coursework checks for APoZ, OBD saliency, slimming and least squares pass right answers and explain
wrong ones (a failed check raises CheckFailed with its words)."""
import pytest
import torch

from pruneviz.coursework import CheckFailed
from pruneviz.coursework.apoz import check_apoz
from pruneviz.coursework.criteria import check_slimming_penalty
from pruneviz.coursework.obd import check_obd_saliency
from pruneviz.coursework.refit import check_least_squares
from tests.notebook_source import notebook_function


def fails(check, fn) -> str:
    with pytest.raises(CheckFailed) as failure:
        check(fn)
    return str(failure.value)


def test_apoz_check_names_shapes_and_counts():
    apoz = notebook_function("05_apoz.ipynb", "channel_apoz")

    def per_position(model, x, batch_size=64):  # forgot to count over the positions: [C, H, W], not [C]
        values = {}

        def keep(name):
            def hook(module, inputs, out):
                values[name] = (out == 0).float().mean(0)
            return hook
        handles = [m.register_forward_hook(keep(n)) for n, m in model.named_modules() if isinstance(m, torch.nn.ReLU)]
        was = model.training
        model.eval()
        with torch.no_grad():
            model(x)
        model.train(was)
        for h in handles:
            h.remove()
        return values

    assert "expected (3,): one APoZ per channel" in fails(check_apoz, per_position)
    counted = fails(check_apoz, lambda model, x, b: {n: v * 32 for n, v in apoz(model, x, b).items()})
    assert "the lecture's example in batches of 1): relu: returned the number of zeros per channel" in counted
    shifted = fails(check_apoz, lambda model, x, b: {n: v + 0.05 for n, v in apoz(model, x, b).items()})
    assert "channel 0 got 0.3938, expected 0.3438" in shifted  # no known slip: the numbers
    assert "in place" in fails(check_apoz, lambda model, x, b: apoz(model, x.clamp_(min=1), b))


def test_obd_check():
    def stub(loss_fn, weight):
        raise NotImplementedError
    words = fails(check_obd_saliency, stub)
    assert "1 problem(s)" in words and "not implemented yet" in words and "returned None" not in words
    saliency = notebook_function("04_second_order.ipynb", "obd_saliency")
    shifted = fails(check_obd_saliency, lambda loss, w: saliency(loss, w) + 0.1)
    assert "at index" in shifted  # no known mistake: numbers
    assert "changed the weight in place" in fails(check_obd_saliency, lambda loss, w: saliency(loss, w.mul_(1.5)))


def gammas(model):
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def test_slimming_and_least_squares_checks():
    assert check_slimming_penalty(lambda m, s: s * sum(g.abs().sum() for g in gammas(m)))
    assert "at index" in fails(check_slimming_penalty, lambda m, s: s * sum(g.sum() for g in gammas(m)))
    assert "no gradient" in fails(check_slimming_penalty,
                                  lambda m, s: torch.tensor(s * sum(g.abs().sum().item() for g in gammas(m))))
    refit = notebook_function("06_regression.ipynb", "reconstruct_weight")
    assert check_least_squares(refit)

    def reads_pruned_channels(layer, x, keep):
        return refit(layer, x, keep) + 0.01
    assert "pruned input channels have non-zero weights" in fails(check_least_squares, reads_pruned_channels)

    def changes_the_layer(layer, x, keep):
        with torch.no_grad():
            layer.weight.mul_(2)
        return refit(layer, x, keep)
    assert "changed the layer it was given" in fails(check_least_squares, changes_the_layer)

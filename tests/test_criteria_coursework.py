"""The coursework checks for APoZ, OBD saliency, slimming and least squares pass right answers and explain
wrong ones (a failed check raises CheckFailed with its words)."""
import pytest
import torch

from pruneviz.coursework import CheckFailed
from pruneviz.coursework.criteria import check_apoz, check_least_squares, check_obd_saliency, check_slimming_penalty


def fails(check, fn) -> str:
    with pytest.raises(CheckFailed) as failure:
        check(fn)
    return str(failure.value)


def test_apoz_check(capsys):
    assert check_apoz(lambda a: (a == 0).float().mean(dim=(0, 2, 3)))
    assert "✓ APoZ of a channel" in capsys.readouterr().out
    assert "expected (3,)" in fails(check_apoz, lambda a: (a == 0).float().mean(dim=(0, 2)))
    inverted = fails(check_apoz, lambda a: (a > 0).float().mean(dim=(0, 2, 3)))  # non-zeros: named, not numbers
    assert "non-zero activations (1 - APoZ)" in inverted and "expected 0.3438" not in inverted
    assert "number of zeros" in fails(check_apoz, lambda a: (a == 0).float().sum(dim=(0, 2, 3)))
    assert "expected 0.3438" in fails(check_apoz, lambda a: (a == 0).float().mean(dim=(0, 2, 3)).flip(0))
    assert "in place" in fails(check_apoz, lambda a: a.clamp_(min=1).mean(dim=(0, 2, 3)))


def test_obd_check():
    assert check_obd_saliency(lambda w, h: 0.5 * h * w ** 2)
    assert "1/2" in fails(check_obd_saliency, lambda w, h: h * w ** 2)
    assert "used |w_i|" in fails(check_obd_saliency, lambda w, h: 0.5 * h * w.abs())
    assert "at index" in fails(check_obd_saliency, lambda w, h: 0.5 * h * w ** 2 + 0.1)  # no known mistake: numbers

    def stub(w, h):
        raise NotImplementedError
    words = fails(check_obd_saliency, stub)
    assert "1 problem(s)" in words and "not implemented yet" in words and "returned None" not in words


def gammas(model):
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def test_slimming_and_least_squares_checks():
    assert check_slimming_penalty(lambda m, s: s * sum(g.abs().sum() for g in gammas(m)))
    assert "at index" in fails(check_slimming_penalty, lambda m, s: s * sum(g.sum() for g in gammas(m)))
    assert "no gradient" in fails(check_slimming_penalty,
                                  lambda m, s: torch.tensor(s * sum(g.abs().sum().item() for g in gammas(m))))
    assert check_least_squares(lambda x, y: torch.linalg.lstsq(x, y).solution.T)
    assert "note the transpose" in fails(check_least_squares, lambda x, y: torch.linalg.lstsq(x, y).solution)

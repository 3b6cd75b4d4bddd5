"""The coursework checks for APoZ and OBD saliency pass right answers and explain wrong ones."""
from pruneviz.coursework.criteria import check_apoz, check_obd_saliency


def test_apoz_check(capsys):
    assert check_apoz(lambda a: (a == 0).float().mean(dim=(0, 2, 3)))
    assert not check_apoz(lambda a: (a == 0).float().mean(dim=(0, 2)))
    assert "expected (3,)" in capsys.readouterr().out
    assert not check_apoz(lambda a: (a > 0).float().mean(dim=(0, 2, 3)))  # fraction of non-zeros
    assert not check_apoz(lambda a: a.clamp_(min=1).mean(dim=(0, 2, 3)))  # mutates its input
    assert "in place" in capsys.readouterr().out


def test_obd_check(capsys):
    assert check_obd_saliency(lambda w, h: 0.5 * h * w ** 2)
    assert not check_obd_saliency(lambda w, h: h * w ** 2)
    assert "1/2" in capsys.readouterr().out
    assert not check_obd_saliency(lambda w, h: 0.5 * h * w.abs())
    assert not check_obd_saliency(lambda w, h: (_ for _ in ()).throw(NotImplementedError))
    assert "not implemented" in capsys.readouterr().out


def test_slimming_and_least_squares_checks():
    import torch

    from pruneviz.coursework.criteria import check_least_squares, check_slimming_penalty

    def gammas(model):
        return [m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    assert check_slimming_penalty(lambda m, s: s * sum(g.abs().sum() for g in gammas(m)))
    assert not check_slimming_penalty(lambda m, s: s * sum(g.sum() for g in gammas(m)))  # gamma, not |gamma|
    assert not check_slimming_penalty(lambda m, s: s * sum(g.abs().sum().item() for g in gammas(m)))
    assert check_least_squares(lambda x, y: torch.linalg.lstsq(x, y).solution.T)
    assert not check_least_squares(lambda x, y: torch.linalg.lstsq(x, y).solution)

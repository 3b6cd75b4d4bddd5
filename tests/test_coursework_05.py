"""Notebook 05's exercise checks: the solutions pass; wrong answers, the shortcuts and the library's own code are
refused in words (pruneviz.coursework.apoz, pruneviz.coursework.criteria)."""
import copy
from collections import OrderedDict

import pytest
import torch

import pruneviz
from pruneviz.coursework import CheckFailed
from pruneviz.coursework.apoz import check_apoz, reference_apoz
from pruneviz.coursework.criteria import check_remove_dead_neurons
from tests.notebook_source import notebook_function


def remove_dead(mlp, x, *, rule=lambda out: (out != 0).any(dim=0), fix_next=True):
    layers = [copy.deepcopy(m) for m in mlp]
    linears = [i for i, m in enumerate(layers) if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        outputs, h = [], x
        for m in layers:
            h = m(h)
            outputs.append(h)
        for a, b in zip(linears, linears[1:]):
            alive = rule(outputs[a + 1])
            first, second = layers[a], layers[b]
            new_first = torch.nn.Linear(first.in_features, int(alive.sum()))
            new_first.weight.copy_(first.weight[alive])
            new_first.bias.copy_(first.bias[alive])
            layers[a] = new_first
            if fix_next:
                new_second = torch.nn.Linear(int(alive.sum()), second.out_features)
                new_second.weight.copy_(second.weight[:, alive])
                new_second.bias.copy_(second.bias)
                layers[b] = new_second
    return torch.nn.Sequential(OrderedDict(zip([n for n, _ in mlp.named_children()], layers)))


def in_place(mlp, x):  # zeroes the dead rows in the model it was given
    with torch.no_grad():
        h = x
        for i, m in enumerate(mlp):
            h = m(h)
            if isinstance(m, torch.nn.ReLU):
                mlp[i - 1].weight[~(h != 0).any(dim=0)] = 0.0
    return mlp


def library(mlp, x):
    from pruneviz.criteria.apoz import dead_units
    dead_units(mlp, (x, torch.zeros(len(x), dtype=torch.long)))
    return remove_dead(mlp, x)


def test_the_solutions_pass(capsys):
    assert check_apoz(notebook_function("05_apoz.ipynb", "channel_apoz"))
    assert check_remove_dead_neurons(remove_dead)
    out = capsys.readouterr().out
    assert "✓ APoZ of a channel" in out and "✓ removing dead neurons" in out


@pytest.mark.parametrize("wrong,words", [
    (lambda mlp, x: copy.deepcopy(mlp), "dead neuron(s) (zero after the ReLU on every row) kept"),
    (lambda mlp, x: remove_dead(mlp, x, rule=lambda out: (out != 0).float().mean(0) > 0.1),
     "a neuron that fires on some row was removed"),
    (lambda mlp, x: remove_dead(mlp, x, fix_next=False), "remove the matching columns of the next Linear"),
    (in_place, "changed the MLP it was given"),
    (library, "the library's own answer"),
])
def test_wrong_removals_are_told_what_is_wrong(wrong, words):
    with pytest.raises(CheckFailed, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_remove_dead_neurons(wrong)


# -- APoZ from hooks: every shortcut fails, by name -------------------------------------------------------

def counting(*, mean_of_batches=False, first_batch_only=False, evaluate=True, give_mode_back=True, remove=True,
             nonzeros=False, dims=None):
    """channel_apoz with one slip switched on (all off: a right answer)."""
    def channel_apoz(model, x, batch_size=64):
        relus = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.ReLU)}
        seen = {n: [] for n in relus}

        def counter(name):
            def hook(module, inputs, out):
                other = dims or [d for d in range(out.dim()) if d != 1]
                seen[name].append(((out == 0).sum(dim=other), out.numel() // out.shape[1]))
            return hook

        handles = [m.register_forward_hook(counter(n)) for n, m in relus.items()]
        was_training = model.training
        if evaluate:
            model.eval()
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start:start + batch_size])
                if first_batch_only:
                    break
        if give_mode_back:
            model.train(was_training)
        if remove:
            for handle in handles:
                handle.remove()
        out = {}
        for name, batches in seen.items():
            if mean_of_batches:
                value = torch.stack([z.float() / n for z, n in batches]).mean(0)
            else:
                value = sum(z for z, _ in batches).float() / sum(n for _, n in batches)
            out[name] = 1 - value if nonzeros else value
        return out
    return channel_apoz


def keyed_by_layer(model, x, batch_size=64):
    """Right values, keyed like pruneviz.apoz (the layer before each ReLU) instead of by the ReLU."""
    names = [n for n, _ in model.named_modules()]
    values = counting()(model, x, batch_size)
    return {names[names.index(n) - 1]: v for n, v in values.items()}


def library(model, x, batch_size=64):
    return pruneviz.apoz(model, (x, torch.zeros(len(x), dtype=torch.long)))


@pytest.mark.parametrize("wrong, words", [
    (counting(mean_of_batches=True), "averaged the APoZ of each batch: the last batch has 40 samples, not 64"),
    (counting(first_batch_only=True), "counted the first batch"),
    (counting(evaluate=False), "count in eval mode"),
    (counting(give_mode_back=False), "it was handed over in training mode: put it back"),
    (counting(remove=False), "hook\\(s\\) on the model"),
    (counting(nonzeros=True), "non-zero activations \\(1 - APoZ\\)"),
    (counting(dims=(0, 2, 3)), "outputs \\[N, C\\]\\), 360 validation images in batches of 100: raised IndexError"),
    (keyed_by_layer, "expected one per nn.ReLU module"),
    (library, "calls pruneviz.apoz, the library's own answer"),
    (lambda acts: (acts == 0).float().mean(dim=(0, 2, 3)), "raised TypeError"),  # the old one-line exercise
])
def test_apoz_refuses_the_shortcuts_by_name(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_apoz(wrong)


def test_the_checks_count_is_the_kits_apoz_and_the_lectures_example():
    """The check's answer agrees with pruneviz.apoz (keyed by the layer before each ReLU) on the zoo's CNN, and gives
    the lecture's 11/32, 12/32, 14/32 in one batch or two."""
    from pruneviz.coursework.apoz import _lecture_model
    from pruneviz.coursework.criteria import lecture_activations

    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    x, _ = pruneviz.data.as_tensors(pruneviz.data.digits().val)
    mine = reference_apoz(model, x, 64)
    kit = pruneviz.apoz(model, (x, torch.zeros(len(x), dtype=torch.long)))
    for i in range(1, 5):
        assert torch.allclose(mine[f"relu{i}"], kit[f"conv{i}"].double().cpu(), atol=1e-6)
    for batch_size in (1, 2):
        lecture = reference_apoz(_lecture_model(), lecture_activations(), batch_size)["relu"]
        assert torch.allclose(lecture, torch.tensor([11 / 32, 12 / 32, 14 / 32], dtype=torch.float64))

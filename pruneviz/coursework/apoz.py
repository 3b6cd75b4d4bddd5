"""Check for 05's APoZ exercise: forward hooks on every ReLU of a network, zeros counted per channel over a
calibration set run in batches, the model left as it was found.

The student's function ``fn(model, x, batch_size) -> {ReLU name: APoZ [C]}`` runs on the lecture's example (two
images x three 4x4 maps: 11/32, 12/32, 14/32), on the zoo's digits-cnn handed over in training mode (4-D outputs;
its BatchNorm must not learn from the calibration images), on digits-mlp (2-D outputs, dead neurons) and on
mnist1d-cnn (3-D outputs), each with a last batch smaller than the others, so an average of the batches' APoZ is
told from the APoZ of the whole set. The check's answer is its own count (:func:`reference_apoz`), which the tests
hold against ``pruneviz.apoz``.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from .criteria import lecture_activations
from .report import Check


def _relus(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, nn.ReLU)]


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _per_batch_counts(model: nn.Module, x: torch.Tensor, batch_size: int
                      ) -> dict[str, list[tuple[torch.Tensor, int]]]:
    """{ReLU name: [(zeros per channel, values per channel) for each batch]}, the model in eval mode."""
    counts: dict[str, list[tuple[torch.Tensor, int]]] = {name: [] for name in _relus(model)}

    def counter(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            other = [d for d in range(output.dim()) if d != 1]  # every dim but the channels'
            counts[name].append(((output == 0).sum(dim=other), output.numel() // output.shape[1]))
        return hook

    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(counter(name)) for name in counts]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start:start + batch_size])
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return counts


def reference_apoz(model: nn.Module, x: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
    """The fraction of zeros of each channel of each ReLU's output over all of ``x``."""
    return {name: sum(z for z, _ in batches).double() / sum(n for _, n in batches)
            for name, batches in _per_batch_counts(model, x, batch_size).items()}


def _slips(model: nn.Module, x: torch.Tensor, batch_size: int, name: str, expected: torch.Tensor
           ) -> tuple[tuple[torch.Tensor, str], ...]:
    """What the usual mistakes return for one ReLU, and their names in words."""
    batches = _per_batch_counts(model, x, batch_size)[name]
    slips = [(1 - expected, "returned the fraction of non-zero activations (1 - APoZ): APoZ counts the zeros, "
              "(output == 0)"),
             (sum(z for z, _ in batches).double(), "returned the number of zeros per channel; divide by the number "
              "of values counted (samples x positions) for a fraction")]
    if len(batches) > 1:
        sizes = [min(batch_size, len(x) - start) for start in range(0, len(x), batch_size)]
        slips += [(torch.stack([z.double() / n for z, n in batches]).mean(0),
                   f"averaged the APoZ of each batch: the last batch has {sizes[-1]} samples, not {sizes[0]}, so "
                   "the mean of the batches' fractions is not the fraction over all samples; add up the zeros "
                   "(and the counts) over the batches, then divide once"),
                  (batches[0][0].double() / batches[0][1], f"counted the first batch ({sizes[0]} sample"
                   f"{'s' if sizes[0] > 1 else ''}) only; "
                   "run every batch and add up")]
    return tuple(slips)


def _judge(check: Check, name: str, value: object, want: torch.Tensor,
           slips: tuple[tuple[torch.Tensor, str], ...]) -> None:
    """One ReLU's APoZ against the count; a known slip is named, else the first channel that differs."""
    check.expect(isinstance(value, torch.Tensor), f"{name}: a {type(value).__name__}, expected a tensor")
    check.expect(tuple(value.shape) == tuple(want.shape), f"{name}: shape {tuple(value.shape)}, expected "
                 f"{tuple(want.shape)}: one APoZ per channel; the channels are dim 1 of the output ([N, C], [N, C, L] "
                 "or [N, C, H, W]), every other dim is counted over")
    value = value.detach().to(torch.float64)
    close = torch.isclose(value, want, rtol=1e-5, atol=1e-6)
    if bool(close.all()):
        return
    for wrong, slip in slips:
        if torch.allclose(value, wrong.to(torch.float64), rtol=1e-5, atol=1e-6):
            check.fail(f"{name}: {slip}")
    channel = int((~close).nonzero()[0])
    check.fail(f"{name}: channel {channel} got {float(value[channel]):.4f}, expected {float(want[channel]):.4f}")


def _lecture_model() -> nn.Sequential:
    """The notebook's tiny model: a 1x1 identity conv, so its ReLU outputs the lecture's activations as given."""
    conv = nn.Conv2d(3, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
    return nn.Sequential(OrderedDict([("conv", conv), ("relu", nn.ReLU()), ("flatten", nn.Flatten()),
                                      ("fc", nn.Linear(48, 2))]))


def _cases() -> list[tuple[str, nn.Module, torch.Tensor, int]]:
    from ..data import as_tensors, digits
    from ..zoo import data as zoo_data
    from ..zoo import load

    x_val, _ = as_tensors(digits().val)
    cnn = load("digits-cnn", device="cpu")
    cnn.train()  # handed over in training mode: the count runs in eval mode and the mode is given back
    signals, _ = as_tensors(zoo_data("mnist1d-cnn")[1], limit=500)
    acts = lecture_activations()
    return [("the lecture's example (2 images x 3 channels of 4x4), one batch of 2", _lecture_model(), acts, 2),
            ("the lecture's example in batches of 1", _lecture_model(), acts, 1),
            ("the zoo's digits-cnn (handed over in training mode), 360 validation images in batches of 64", cnn,
             x_val, 64),
            ("the zoo's digits-mlp (outputs [N, C]), 360 validation images in batches of 100",
             load("digits-mlp", device="cpu"), x_val, 100),
            ("the zoo's mnist1d-cnn (outputs [N, C, L]), 500 validation signals in batches of 128",
             load("mnist1d-cnn", device="cpu"), signals, 128)]


def check_apoz(student_fn: Callable[[nn.Module, torch.Tensor, int], dict]) -> bool:
    """``student_fn(model, x, batch_size) -> {name: APoZ [C]}``: for every ``nn.ReLU`` of ``model`` (by its name in
    ``named_modules()``), the fraction of zeros of each channel of its output (dim 1) over all of ``x``, run in
    batches of ``batch_size`` under forward hooks; the model's weights, BatchNorm statistics and train/eval mode
    as they were, no hook left behind. The library's APoZ (``pruneviz.apoz``, its hooks) is refused."""
    check = Check("APoZ of a channel")
    for case, model, x, batch_size in _cases():
        with check.case(case):
            state = {k: v.clone() for k, v in model.state_dict().items()}
            was_training, hooks, x_before = model.training, _hooks(model), x.clone()
            got = check.run(student_fn, model, x, batch_size)
            check.expect(torch.equal(x, x_before), "changed the inputs x in place")
            check.expect(all(torch.equal(state[k], v) for k, v in model.state_dict().items()),
                         "changed the model's weights or BatchNorm statistics: count in eval mode (model.eval(); a "
                         "BatchNorm in training mode learns running statistics from the calibration images)")
            mode = {True: "training", False: "eval"}
            check.expect(model.training == was_training, f"left the model in {mode[model.training]} mode; it was "
                         f"handed over in {mode[was_training]} mode: put it back (model.train(was_training))")
            check.expect(_hooks(model) == hooks, f"left {_hooks(model) - hooks} hook(s) on the model: keep the "
                         "handles register_forward_hook returns and call .remove() on each (in a finally)")
            check.expect(isinstance(got, dict), f"returned a {type(got).__name__}, expected a dict {{ReLU name: APoZ "
                         "per channel}}")
            expected = reference_apoz(model, x, batch_size)
            check.expect(set(got) == set(expected), f"returned keys {sorted(got)}, expected one per nn.ReLU module, "
                         f"by its name in model.named_modules(): {sorted(expected)}")
            for name, want in expected.items():
                _judge(check, name, got[name], want, _slips(model, x, batch_size, name, want))
    return check.done()

"""A plain training loop: the zoo trains with it, fine-tuning builds on it.

Given a Pruner, it keeps pruned weights exactly zero: gradients are masked before the step (so momentum never
builds on them) and the masks are written again after it (so weight decay and Adam's update cannot revive them).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from tqdm.auto import tqdm

from .snapshot import rolled_back
from .data import Data, as_tensors, check_class_targets, check_data, first_batch
from .device import input_cast, model_device
from .errors import check_count, check_model, unknown_choice
from .evaluation import logits_of, run_model

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=1e-2),
}


def make_optimizer(optimizer: str | Callable[..., torch.optim.Optimizer], params, lr: float
                   ) -> torch.optim.Optimizer:
    """An optimizer from a name ('sgd' with momentum 0.9, 'adam', 'adamw') or a factory ``f(params)``."""
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise ValueError(f"the optimizer factory must return a torch.optim.Optimizer, got {type(opt).__name__}")
        if isinstance(opt, torch.optim.LBFGS):
            raise ValueError("LBFGS needs a closure that re-evaluates the loss at every step, which this loop "
                             "does not give; use 'sgd', 'adam', 'adamw' or a factory of a first-order optimizer")
        return opt
    if optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", optimizer, OPTIMIZERS)
    return OPTIMIZERS[optimizer](params, lr)


def check_lr(lr: object) -> float:
    """A learning rate is a finite number > 0."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    return float(lr)


LOSS_FN_HINT = ", or pass loss_fn= for other targets"


def check_training(model: nn.Module, data: Data, *, epochs: int, lr: float, batch_size: int,
                   steps: int | None = None, loss_fn: Callable | None = None) -> None:
    """Everything about a training call that can be checked before the model is touched.

    With the default cross-entropy the targets must be class indices the model can output: one forward pass on
    a single sample, in eval mode and without gradients (nothing in the model moves), tells the class count.
    """
    check_model(model)
    check_count(epochs, "epochs")
    if steps is not None:
        check_count(steps, "steps")
    check_count(batch_size, "batch_size", minimum=1)
    check_lr(lr)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"every parameter of the model has requires_grad=False ({type(model).__name__} is frozen): "
                         "nothing to train; unfreeze what should learn with param.requires_grad_(True)")
    check_data(data, model, "training data")
    if loss_fn is not None:
        return
    x, y = first_batch(data)  # in-memory data whole, a DataLoader by its first batch
    check_class_targets(y, None, "cross-entropy", LOSS_FN_HINT)
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            out = logits_of(model, input_cast(model)(x[:1].to(model_device(model))))
    finally:
        for module, mode in modes:
            module.training = mode
    if out.dim() == 2:
        check_class_targets(y, out.shape[1], "cross-entropy", LOSS_FN_HINT)


def rolled_back_on_error(model: nn.Module, pruners=()):
    """On any exception inside the block (Ctrl-C included), put the model back as it was (parameters,
    gradients, buffers such as BatchNorm's running statistics, every module's train/eval mode, the kit's dense
    copies) and the ``pruners``' masks and scores, then re-raise: :func:`pruneviz.snapshot.rolled_back`."""
    return rolled_back(model, pruners)


Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
Schedule = Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler]


def shuffled(data: Data, batch_size: int, generator: torch.Generator, device: torch.device,
             augment: Augment | None = None):
    """Mini-batches in a seeded random order (the kit's data sets fit in memory: index one tensor pair),
    each passed through ``augment(x, generator)`` on the CPU, so the draws do not depend on the device."""
    x, y = as_tensors(data)
    x, y = x.cpu(), y.cpu()  # the seeded order and augmentation are drawn on the CPU
    order = torch.randperm(len(x), generator=generator)
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        xb = x[idx] if augment is None else augment(x[idx], generator)
        yield xb.to(device), y[idx].to(device)


@contextmanager
def _torch_setting(get: Callable[[], object], set_: Callable[[object], None], value: object) -> Iterator[None]:
    """``set_(value)`` for the block, then put back what ``get()`` gave before (None: leave it alone)."""
    if value is None:
        yield
        return
    previous = get()
    set_(value)
    try:
        yield
    finally:
        set_(previous)


def torch_threads(count: int | None):
    """Run the block on ``count`` CPU threads (None: leave torch's setting alone).

    A float reduction split over more threads sums in another order, and over an epoch the rounding differences
    grow into a different model (digits-cnn: 99.7 % trained on one thread, 99.4 % on two). Training on one
    thread gives the same weights on a 2-core CI machine and an 8-core laptop; the kit's models are small
    enough that one thread is barely slower.
    """
    return _torch_setting(torch.get_num_threads, torch.set_num_threads, count)


def deterministic_algorithms():
    """torch.use_deterministic_algorithms for the block, put back as it was after (the zoo's training)."""
    return _torch_setting(torch.are_deterministic_algorithms_enabled, torch.use_deterministic_algorithms, True)


def one_cycle(peak_lr: float) -> Schedule:
    """Smith's one-cycle schedule (warm up to ``peak_lr``, anneal to near zero), torch's OneCycleLR."""
    return lambda opt, total_steps: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak_lr,
                                                                         total_steps=max(1, total_steps))


def train(model: nn.Module, data: Data, epochs: int = 30, *, optimizer: str | Callable = "adam",
          lr: float = 1e-3, batch_size: int = 64, seed: int = 0, pruner=None, progress: bool = True,
          loss_fn: Callable | None = None, on_step: Callable[[], None] | None = None,
          steps: int | None = None, augment: Augment | None = None, schedule: Schedule | None = None,
          threads: int | None = 1) -> list[float]:
    """Train ``model`` in place on its device; returns the mean loss of each epoch.

    ``loss_fn(model, logits, targets)`` replaces cross-entropy (e.g. to add network slimming's L1 on gamma).
    ``on_step()`` runs after every optimizer step (e.g. to move an AGP schedule).
    ``steps`` stops after that many optimizer steps instead (epochs then only bounds it; the last epoch's loss
    is the mean over the steps it ran).
    ``augment(x, generator)`` transforms each training batch (e.g. :func:`pruneviz.data.augment_digits`).
    ``schedule(optimizer, total_steps)`` makes a learning-rate scheduler stepped after every step
    (e.g. :func:`one_cycle`).
    ``threads``: CPU threads to train on; the default 1 makes the result the same on any core count
    (see :func:`torch_threads`); None keeps torch's setting.
    """
    check_training(model, data, epochs=epochs, lr=lr, batch_size=batch_size, steps=steps, loss_fn=loss_fn)
    check_pruner_of(model, pruner)
    with torch_threads(threads), rolled_back_on_error(model, [pruner] if pruner is not None else []):
        return _train(model, data, epochs, optimizer, lr, batch_size, seed, pruner, progress, loss_fn, on_step,
                      steps, augment, schedule)


def check_pruner_of(model: nn.Module, pruner) -> None:
    """The Pruner given to a training loop must be the one on this model: another model's would mask that
    model at every step and let this one revive its zeros."""
    if pruner is None:
        return
    from .pruner import Pruner  # the Pruner imports training's helpers through finetune: import at call time
    if not isinstance(pruner, Pruner):
        raise ValueError(f"pruner must be the Pruner whose masks to keep, got {type(pruner).__name__}")
    if pruner.model is not model:
        raise ValueError("pruner was built on another model; pass the Pruner that pruned this model")


def frozen(module: nn.Module) -> bool:
    """A normalization layer with running statistics whose parameters all have requires_grad=False: the user
    froze it, so training must not update its statistics either (it stays in eval mode)."""
    params = list(module.parameters(recurse=False))
    return (getattr(module, "track_running_stats", False) and bool(params)
            and not any(p.requires_grad for p in params))


def train_modes(model: nn.Module) -> None:
    """Train mode for training, except what the user froze: a frozen normalization layer (see :func:`frozen`),
    and, in a model already in train mode, any module the user put in eval mode (``model.train();
    model.bn1.eval()``)."""
    keep_eval = [m for m in model.modules() if frozen(m) or (model.training and not m.training)]
    model.train()
    for module in keep_eval:
        module.training = False


def _train(model, data, epochs, optimizer, lr, batch_size, seed, pruner, progress, loss_fn, on_step, steps,
           augment, schedule) -> list[float]:
    device = model_device(model)
    cast = input_cast(model)
    opt = make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad], lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    done = 0
    per_epoch = max(1, math.ceil(len(as_tensors(data)[1]) / batch_size))
    if steps is not None:
        epochs = math.ceil(steps / per_epoch)
    scheduler = schedule(opt, steps if steps is not None else epochs * per_epoch) if schedule else None
    train_modes(model)
    for _ in tqdm(range(epochs), desc="training", disable=not progress, leave=False):
        total, count = 0.0, 0
        for x, y in shuffled(data, batch_size, gen, device, augment):
            if steps is not None and done == steps:
                break
            logits = run_model(model, cast(x))  # a loss_fn may take any output (a tuple, a dict)
            loss = loss_fn(model, logits, y) if loss_fn else nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if pruner is not None:
                pruner.mask_gradients()
            opt.step()
            if pruner is not None:
                pruner.apply_masks()
            if scheduler is not None:
                scheduler.step()
            done += 1
            if on_step is not None:
                on_step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss became {value} at step {done} (learning rate {lr} "
                                         "too high?)")
            total += value * len(x)
            count += len(x)
        if count:
            losses.append(total / count)
    model.eval()
    return losses

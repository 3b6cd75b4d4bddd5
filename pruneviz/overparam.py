"""Over-parameterization: is a wide model pruned to a small size better than the small model trained directly?

The experiment of Liu et al. 2019 ("Rethinking the value of network pruning") on the kit's own data: prune the
neurons or channels of a trained wide model, compact it to a narrow dense model, fine-tune it; train the very same
narrow architecture from a fresh random initialisation, for as many epochs as the wide model was trained
(Scratch-E) and for as many as pruning used in all, wide training plus fine-tuning (Scratch-B); compare test
accuracy at each size over several seeds. Every model trains by the zoo's recipe (:mod:`pruneviz.zoo.recipe`) of
the wide model's task: ``recipe="mnist1d-mlp"`` trains the narrow models of the MNIST-1D MLP as that model was
trained (its epochs, weight decay, no augmentation); the default is the digits MLP's.

The lecture's reason to prune rather than train small is that over-parameterization helps optimization: a wide
network reaches a low training loss more easily. :func:`fitting` measures that itself: the training loss over
the epochs of the wide architecture and of each narrow one trained from scratch, over seeds, and how often each
fits its training set (:func:`fit_summary`).

The full experiment takes minutes of training, so its rows ship with the kit (:mod:`pruneviz.artefacts`), keyed by
everything they depend on (the wide model's weights, the data, every argument and :data:`CACHE_VERSION`; not the
CPU or torch's version): the same rows on every machine; a changed zoo or argument computes them again.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from . import artefacts
from .data import Data
from .errors import check_ratio, unknown_choice
from .evaluation import evaluate, predict
from .metrics import count_parameters
from .pruner import Pruner
from .snapshot import analysis
from .surgery import channel_prunable_layers, compact
from .training import one_cycle, train

# bump when the computation below changes, so cached rows from the old one are not read as the new one's
CACHE_VERSION = 3
DIGITS_RECIPE = "digits-mlp"  # the recipe the experiment was first run with (its shipped rows are keyed without it)
DEFAULT_CACHE = artefacts.STORE  # the shipped results (made once with the recorded kernels)
METHODS = ("pruned", "pruned + fine-tuned", "scratch-E", "scratch-B")
SPARSITIES = (0.5, 0.75, 0.875, 0.9375)


def reinitialized(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with fresh random weights (each layer's own ``reset_parameters``, so the init scale
    fits the copy's own widths); the global random state is left as it was."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return fresh


def training_recipe(name: str):
    """The zoo's :class:`pruneviz.zoo.recipe.Recipe` of model ``name`` (its task, epochs, weight decay, peak
    learning rate, batch size and augmentation): the narrow models train as the wide one did."""
    from .zoo.recipe import RECIPES

    if name not in RECIPES:
        raise unknown_choice("recipe", name, RECIPES)
    return RECIPES[name]


def recipe_train(model: nn.Module, data: Data, epochs: int, seed: int, peak_lr: float, weight_decay: float,
                 recipe: str = DIGITS_RECIPE) -> list[float]:
    """Train in place by the zoo's recipe of ``recipe`` (a zoo name): SGD with Nesterov momentum and weight
    decay, a one-cycle learning rate peaking at ``peak_lr``, that recipe's batch size and augmentation (the
    digits': shifted and rotated images; MNIST-1D's: none), one thread (deterministic). Returns the mean
    training loss of each epoch."""
    from .zoo.recipe import sgd

    how = training_recipe(recipe)
    return train(model, data, epochs=epochs, optimizer=sgd(weight_decay), batch_size=how.batch_size, seed=seed,
                 augment=how.augment, schedule=one_cycle(peak_lr), threads=1, progress=False)


def _recipe_options(recipe: str) -> dict:
    """The recipe's part of a cache key: nothing for the digits MLP's, so that its rows, shipped before other
    recipes could be chosen, keep their key."""
    training_recipe(recipe)
    return {} if recipe == DIGITS_RECIPE else {"recipe": recipe}


@analysis
def narrow_models(model: nn.Module, sparsities: Iterable[float], criterion: str = "magnitude"
                  ) -> dict[float, nn.Module]:
    """{sparsity: compacted narrow model}: every layer whose channels can go alone loses ``sparsity`` of them by
    ``criterion``; ``model`` is left unchanged."""
    sparsities = [check_ratio(s, "channel sparsity") for s in sparsities]
    pruner = Pruner(model, criterion, "channel", layers=channel_prunable_layers(model))
    return {s: compact(model, pruner.prune(s).masks) for s in sparsities}


def choose_finetune_lr(model: nn.Module, train_data: Data, val_data: Data,
                       sparsities: Iterable[float] = SPARSITIES, *, lrs: Iterable[float] = (0.01, 0.03, 0.1),
                       criterion: str = "magnitude", finetune_epochs: int = 20, seed: int = 0,
                       weight_decay: float | None = None, recipe: str = DIGITS_RECIPE,
                       cache: str | Path | None = None) -> pd.DataFrame:
    """Validation accuracy of each narrow model fine-tuned with each peak learning rate of ``lrs`` (one seed):
    the choice :func:`best_lrs` makes from it is made on ``val_data``, never on the test set. One row per
    (sparsity, lr): sparsity, parameters, lr, val_accuracy. ``recipe`` and ``cache`` as in
    :func:`pruned_vs_scratch`."""
    how = training_recipe(recipe)
    options = {"sparsities": [check_ratio(s, "channel sparsity") for s in sparsities],
               "lrs": [float(lr) for lr in lrs], "criterion": criterion, "finetune_epochs": finetune_epochs,
               "seed": int(seed), "weight_decay": how.weight_decay if weight_decay is None else weight_decay,
               **_recipe_options(recipe)}

    def compute() -> list[dict]:
        rows = []
        for sparsity, narrow in narrow_models(model, options["sparsities"], criterion).items():
            for lr in options["lrs"]:
                tuned = copy.deepcopy(narrow)
                recipe_train(tuned, train_data, finetune_epochs, options["seed"], lr, options["weight_decay"],
                             recipe)
                rows.append({"sparsity": sparsity, "parameters": count_parameters(narrow), "lr": lr,
                             "val_accuracy": evaluate(tuned, val_data)})
        return rows

    return pd.DataFrame(_cached(cache, "choose_finetune_lr", model, (train_data, val_data), options, compute))


def best_lrs(choice: pd.DataFrame) -> dict[float, float]:
    """{sparsity: the lr of highest validation accuracy} from :func:`choose_finetune_lr` (ties: the smaller lr)."""
    best = choice.sort_values(["sparsity", "val_accuracy", "lr"], ascending=[True, False, True], kind="stable")
    return {float(s): float(g.lr.iloc[0]) for s, g in best.groupby("sparsity", sort=True)}


def pruned_vs_scratch(model: nn.Module, train_data: Data, test_data: Data,
                      sparsities: Iterable[float] = SPARSITIES, *, criterion: str = "magnitude",
                      trained_epochs: int | None = None, finetune_epochs: int = 20, seeds: Iterable[int] = range(5),
                      peak_lr: float | None = None, finetune_lr: float | Mapping[float, float] = 0.01,
                      weight_decay: float | None = None, recipe: str = DIGITS_RECIPE,
                      cache: str | Path | None = None) -> pd.DataFrame:
    """Test accuracy of the trained wide ``model`` pruned to each channel sparsity (right after pruning, then
    after ``finetune_epochs`` of fine-tuning) and of the same narrow architecture trained from scratch for
    ``trained_epochs`` (Scratch-E: the epochs the wide model was trained, its recipe's by default) and for
    ``trained_epochs + finetune_epochs`` (Scratch-B: as many epochs as pruning used in all).

    Every model trains by the zoo's recipe of ``recipe`` (the zoo name of the wide model: its weight decay,
    batch size and augmentation). Training from scratch peaks at ``peak_lr`` (the recipe's); fine-tuning at
    ``finetune_lr``, one for all sizes or
    {sparsity: lr} (e.g. :func:`best_lrs` of :func:`choose_finetune_lr`, chosen on validation data).
    One row per (sparsity, method, seed): columns sparsity, parameters, method (:data:`METHODS`), seed, epochs
    (training epochs of that narrow model, counting the wide model's for the pruned ones), accuracy.
    'pruned' does not depend on the seed and has one row. ``model`` is left unchanged.
    ``cache``: :data:`DEFAULT_CACHE` reads the shipped rows (computed live, with a warning, when none match);
    a folder of your own is a cache, written on a miss; None always computes.
    """
    how = training_recipe(recipe)
    sparsities = [check_ratio(s, "channel sparsity") for s in sparsities]
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("pruned_vs_scratch needs at least one seed, got none")
    lrs = ({s: float(finetune_lr[s]) for s in sparsities} if isinstance(finetune_lr, Mapping)
           else {s: float(finetune_lr) for s in sparsities})
    options = {"sparsities": sparsities, "criterion": criterion,
               "trained_epochs": how.epochs if trained_epochs is None else trained_epochs,
               "finetune_epochs": finetune_epochs, "seeds": seeds,
               "peak_lr": how.peak_lr if peak_lr is None else peak_lr,
               "finetune_lrs": [lrs[s] for s in sparsities],
               "weight_decay": how.weight_decay if weight_decay is None else weight_decay}
    rows = _cached(cache, "pruned_vs_scratch", model, (train_data, test_data),
                   {**options, **_recipe_options(recipe)},
                   lambda: _compute(model, train_data, test_data, **options, recipe=recipe))
    return pd.DataFrame(rows)


def _compute(model, train_data, test_data, *, sparsities, criterion, trained_epochs, finetune_epochs, seeds,
             peak_lr, finetune_lrs, weight_decay, recipe) -> list[dict]:
    rows = []

    def add(sparsity, size, method, seed, epochs, net):
        rows.append({"sparsity": sparsity, "parameters": size, "method": method, "seed": seed, "epochs": epochs,
                     "accuracy": evaluate(net, test_data)})

    narrows = narrow_models(model, sparsities, criterion)
    for (sparsity, narrow), finetune_lr in zip(narrows.items(), finetune_lrs):
        size = count_parameters(narrow)
        add(sparsity, size, "pruned", seeds[0], trained_epochs, narrow)
        for seed in seeds:
            tuned = copy.deepcopy(narrow)
            recipe_train(tuned, train_data, finetune_epochs, seed, finetune_lr, weight_decay, recipe)
            add(sparsity, size, "pruned + fine-tuned", seed, trained_epochs + finetune_epochs, tuned)
            for method, epochs in (("scratch-E", trained_epochs), ("scratch-B", trained_epochs + finetune_epochs)):
                scratch = reinitialized(narrow, seed)
                recipe_train(scratch, train_data, epochs, seed, peak_lr, weight_decay, recipe)
                add(sparsity, size, method, seed, epochs, scratch)
    return rows


def fitting(model: nn.Module, train_data: Data, test_data: Data, sparsities: Iterable[float] = SPARSITIES, *,
            criterion: str = "magnitude", epochs: int | None = None, seeds: Iterable[int] = range(5),
            peak_lr: float | None = None, weight_decay: float | None = None, recipe: str = DIGITS_RECIPE,
            cache: str | Path | None = None) -> pd.DataFrame:
    """How well each width *optimizes*: the architecture of ``model`` (sparsity 0 in ``sparsities``) and the
    narrow one of each channel sparsity, trained from scratch (a fresh initialisation, as Scratch-E of
    :func:`pruned_vs_scratch`: the same seeds, ``epochs`` and recipe give the same model) for ``epochs`` (the
    recipe's by default), once per seed.

    One row per (sparsity, seed): sparsity, parameters, seed, epochs, losses (the mean training loss of each
    epoch, as training saw it), train_loss and train_accuracy (the final model on the whole training set, in eval
    mode), test_accuracy. ``model`` is left unchanged; ``recipe`` and ``cache`` as in :func:`pruned_vs_scratch`.
    """
    how = training_recipe(recipe)
    sparsities = [check_ratio(s, "channel sparsity") for s in sparsities]
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("fitting needs at least one seed, got none")
    options = {"sparsities": sparsities, "criterion": criterion,
               "epochs": how.epochs if epochs is None else epochs, "seeds": seeds,
               "peak_lr": how.peak_lr if peak_lr is None else peak_lr,
               "weight_decay": how.weight_decay if weight_decay is None else weight_decay, "recipe": recipe}

    def compute() -> list[dict]:
        architectures = narrow_models(model, [s for s in sparsities if s > 0], criterion)
        if 0.0 in sparsities:
            architectures[0.0] = model  # the wide architecture itself
        rows = []
        for sparsity in sorted(architectures):
            for seed in seeds:
                net = reinitialized(architectures[sparsity], seed)
                losses = recipe_train(net, train_data, options["epochs"], seed, options["peak_lr"],
                                      options["weight_decay"], recipe)
                logits, targets = predict(net, train_data)
                rows.append({"sparsity": sparsity, "parameters": count_parameters(net), "seed": seed,
                             "epochs": options["epochs"], "losses": losses,
                             "train_loss": float(nn.functional.cross_entropy(logits, targets)),
                             "train_accuracy": evaluate(net, train_data),
                             "test_accuracy": evaluate(net, test_data)})
        return rows

    return pd.DataFrame(_cached(cache, "fitting", model, (train_data, test_data), options, compute))


def fit_summary(fits: pd.DataFrame, train_size: int, below: float = 1.0) -> pd.DataFrame:
    """Per size (largest first), from :func:`fitting`: seeds, how many failed to fit the training set (final
    train accuracy below ``below``, by default: any of the ``train_size`` training examples misclassified), the
    final training loss (median, min, max over seeds), train accuracy in % (mean, min) and the mean number of
    training examples misclassified, test accuracy in % (mean, std)."""
    rows = []
    for size, group in fits.groupby("parameters", sort=False):
        rows.append({"parameters": size, "sparsity": group.sparsity.iloc[0], "seeds": len(group),
                     "failed": int((group.train_accuracy < below).sum()),
                     "loss_median": group.train_loss.median(), "loss_min": group.train_loss.min(),
                     "loss_max": group.train_loss.max(), "train_mean": 100 * group.train_accuracy.mean(),
                     "train_min": 100 * group.train_accuracy.min(),
                     "misfit": ((1 - group.train_accuracy) * train_size).mean(),
                     "test_mean": 100 * group.test_accuracy.mean(),
                     "test_std": 100 * group.test_accuracy.std(ddof=1) if len(group) > 1 else 0.0})
    return pd.DataFrame(rows).sort_values("parameters", ascending=False, kind="stable").reset_index(drop=True)


def loss_curves(fits: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """{parameters: DataFrame of epoch (1, 2, ...) x seed} of the per-epoch training losses of :func:`fitting`,
    largest model first: the curves with their spread over seeds."""
    curves = {}
    for size, group in sorted(fits.groupby("parameters"), key=lambda item: -item[0]):
        table = pd.DataFrame({int(row.seed): list(row.losses) for row in group.itertuples()})
        table.index = pd.RangeIndex(1, len(table) + 1, name="epoch")
        curves[int(size)] = table
    return curves


def _cached(cache: str | Path | None, name: str, model: nn.Module, data: tuple, options: dict,
            compute: Callable[[], list[dict]]) -> list[dict]:
    """``compute()``'s rows, or the stored rows made from the same weights, data and options: the shipped ones
    when ``cache`` is :data:`DEFAULT_CACHE` (:mod:`pruneviz.artefacts`), a folder of your own otherwise."""
    if cache is None:
        return compute()
    return artefacts.rows(name, compute, inputs=(model, *data), options={**options, "version": CACHE_VERSION},
                          store=cache)


def summary(results: pd.DataFrame, test_size: int | None = None) -> pd.DataFrame:
    """Test accuracy in % per (parameters, method) over the seeds: mean, std, min, max, seeds; largest model
    first. With ``test_size``, also the mean in test images (``mean`` x ``test_size`` / 100)."""
    table = (results.assign(accuracy=100 * results.accuracy)
             .groupby(["parameters", "method"], sort=False).accuracy
             .agg(["mean", "std", "min", "max", "count"]).rename(columns={"count": "seeds"})
             .fillna({"std": 0.0}).sort_index(level="parameters", ascending=False, sort_remaining=False))
    if test_size is not None:
        table["images"] = table["mean"] * test_size / 100
    return table


def gaps(results: pd.DataFrame, against: str = "scratch-B", test_size: int = 360) -> pd.DataFrame:
    """Per size: pruned + fine-tuned minus ``against`` in mean test accuracy (points of %) and in test images,
    beside the larger of the two methods' seed standard deviations (points of %)."""
    table = summary(results)
    rows = []
    for size in table.index.get_level_values("parameters").unique():
        tuned, other = table.loc[(size, "pruned + fine-tuned")], table.loc[(size, against)]
        gap = tuned["mean"] - other["mean"]
        rows.append({"parameters": size, "gap": gap, "gap_images": gap * test_size / 100,
                     "seed_std": max(tuned["std"], other["std"])})
    return pd.DataFrame(rows)

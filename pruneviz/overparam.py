"""Over-parameterization: is a wide model pruned to a small size better than the small model trained directly?

The experiment of Liu et al. 2019 ("Rethinking the value of network pruning") on the kit's own data: prune the
neurons or channels of a trained wide model, compact it to a narrow dense model, fine-tune it; train the very same
narrow architecture from a fresh random initialisation, for as many epochs as the wide model was trained
(Scratch-E) and for as many as pruning used in all, wide training plus fine-tuning (Scratch-B); compare test
accuracy at each size over several seeds. Every model trains by the zoo's recipe (:mod:`pruneviz.zoo.recipe`).

The full experiment takes minutes, so :func:`pruned_vs_scratch` keeps its rows in a cache file keyed by
everything they depend on (the wide model's weights, the data, every argument, torch's version and
:data:`CACHE_VERSION`): a changed zoo or a changed argument recomputes, an unchanged one reads.
"""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .data import Data, as_tensors, augment_digits
from .errors import check_ratio
from .evaluation import evaluate
from .metrics import count_parameters
from .pruner import Pruner
from .snapshot import analysis
from .surgery import channel_prunable_layers, compact
from .training import one_cycle, train

# bump when the computation below changes, so cached rows from the old one are not read as the new one's
CACHE_VERSION = 3
DEFAULT_CACHE = Path(__file__).parent / "zoo" / "weights" / "pruned_vs_scratch.json"
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


def recipe_train(model: nn.Module, data: Data, epochs: int, seed: int, peak_lr: float, weight_decay: float
                 ) -> None:
    """Train in place by the zoo's recipe: SGD with Nesterov momentum and weight decay, a one-cycle learning rate
    peaking at ``peak_lr``, augmented digits, one thread (deterministic)."""
    from .zoo.recipe import BATCH_SIZE, sgd

    train(model, data, epochs=epochs, optimizer=sgd(weight_decay), batch_size=BATCH_SIZE, seed=seed,
          augment=augment_digits, schedule=one_cycle(peak_lr), threads=1, progress=False)


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
                       weight_decay: float | None = None, cache: str | Path | None = None) -> pd.DataFrame:
    """Validation accuracy of each narrow model fine-tuned with each peak learning rate of ``lrs`` (one seed):
    the choice :func:`best_lrs` makes from it is made on ``val_data``, never on the test set. One row per
    (sparsity, lr): sparsity, parameters, lr, val_accuracy. ``cache`` as in :func:`pruned_vs_scratch`."""
    from .zoo import recipe

    options = {"sparsities": [check_ratio(s, "channel sparsity") for s in sparsities],
               "lrs": [float(lr) for lr in lrs], "criterion": criterion, "finetune_epochs": finetune_epochs,
               "seed": int(seed),
               "weight_decay": recipe.WEIGHT_DECAY["digits-mlp"] if weight_decay is None else weight_decay}

    def compute() -> list[dict]:
        rows = []
        for sparsity, narrow in narrow_models(model, options["sparsities"], criterion).items():
            for lr in options["lrs"]:
                tuned = copy.deepcopy(narrow)
                recipe_train(tuned, train_data, finetune_epochs, options["seed"], lr, options["weight_decay"])
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
                      weight_decay: float | None = None, cache: str | Path | None = None) -> pd.DataFrame:
    """Test accuracy of the trained wide ``model`` pruned to each channel sparsity (right after pruning, then
    after ``finetune_epochs`` of fine-tuning) and of the same narrow architecture trained from scratch for
    ``trained_epochs`` (Scratch-E: the epochs the wide model was trained, the zoo's 100 by default) and for
    ``trained_epochs + finetune_epochs`` (Scratch-B: as many epochs as pruning used in all).

    Training from scratch peaks at ``peak_lr`` (the zoo's); fine-tuning at ``finetune_lr``, one for all sizes or
    {sparsity: lr} (e.g. :func:`best_lrs` of :func:`choose_finetune_lr`, chosen on validation data).
    One row per (sparsity, method, seed): columns sparsity, parameters, method (:data:`METHODS`), seed, epochs
    (training epochs of that narrow model, counting the wide model's for the pruned ones), accuracy.
    'pruned' does not depend on the seed and has one row. ``model`` is left unchanged. ``cache``: a JSON file
    to read the rows from when their key matches, and to write them to otherwise (None: always compute).
    """
    from .zoo import recipe

    sparsities = [check_ratio(s, "channel sparsity") for s in sparsities]
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("pruned_vs_scratch needs at least one seed, got none")
    lrs = ({s: float(finetune_lr[s]) for s in sparsities} if isinstance(finetune_lr, Mapping)
           else {s: float(finetune_lr) for s in sparsities})
    options = {"sparsities": sparsities, "criterion": criterion,
               "trained_epochs": recipe.EPOCHS if trained_epochs is None else trained_epochs,
               "finetune_epochs": finetune_epochs, "seeds": seeds,
               "peak_lr": recipe.PEAK_LR if peak_lr is None else peak_lr,
               "finetune_lrs": [lrs[s] for s in sparsities],
               "weight_decay": recipe.WEIGHT_DECAY["digits-mlp"] if weight_decay is None else weight_decay}
    rows = _cached(cache, "pruned_vs_scratch", model, (train_data, test_data), options,
                   lambda: _compute(model, train_data, test_data, **options))
    return pd.DataFrame(rows)


def _compute(model, train_data, test_data, *, sparsities, criterion, trained_epochs, finetune_epochs, seeds,
             peak_lr, finetune_lrs, weight_decay) -> list[dict]:
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
            recipe_train(tuned, train_data, finetune_epochs, seed, finetune_lr, weight_decay)
            add(sparsity, size, "pruned + fine-tuned", seed, trained_epochs + finetune_epochs, tuned)
            for method, epochs in (("scratch-E", trained_epochs), ("scratch-B", trained_epochs + finetune_epochs)):
                scratch = reinitialized(narrow, seed)
                recipe_train(scratch, train_data, epochs, seed, peak_lr, weight_decay)
                add(sparsity, size, method, seed, epochs, scratch)
    return rows


def _cached(cache: str | Path | None, name: str, model: nn.Module, data: tuple, options: dict,
            compute: Callable[[], list[dict]]) -> list[dict]:
    """``compute()``'s rows, read from the JSON file ``cache`` (one entry per ``name``) when the entry's key
    (weights, data, options, versions) matches; computed and stored there otherwise."""
    if cache is None:
        return compute()
    path = Path(cache)
    key = _cache_key(model, data, options)
    entries = json.loads(path.read_text()) if path.exists() else {}
    if entries.get(name, {}).get("key") == key:
        return entries[name]["rows"]
    rows = compute()
    entries[name] = {"key": key, "options": options, "rows": rows}
    path.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return rows


def _cache_key(model: nn.Module, data: tuple, options: dict) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for split in data:
        for tensor in as_tensors(split):
            digest.update(tensor.cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps(options, sort_keys=True).encode())
    digest.update(f"{torch.__version__} v{CACHE_VERSION}".encode())
    return digest.hexdigest()


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

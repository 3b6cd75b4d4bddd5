"""Latency comparisons that a busy machine cannot turn around.

One timing of model A and a later one of model B compare the load of two moments as much as the models: on a
shared 2-core machine the same pair of models measured 450x apart in one run and 1.05x in another. So the
models are timed in rounds: every round times each model (in alternating order, so a drift of the load favours
no model by its place), and each round gives a ratio of neighbouring timings, baseline / model. The speed-up is
the median of those per-round ratios; their spread (quartiles over the median) says whether the rounds agree.
A large spread means the load changed faster than the models took turns: the figure is then not to be trusted, and
:func:`verdict` says so in words.

Run under ``torch.inference_mode`` on one CPU thread (more threads on a shared machine measure the neighbours),
a pass is timed by the CPU time of the thread that runs it, which leaves out the time the scheduler gives to
other processes; on a GPU, by :func:`pruneviz.metrics.latency`'s synchronised wall clock.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager

import pandas as pd
import torch
from torch import nn

from .device import input_cast, model_device
from .errors import check_count
from .metrics import latency, macs
from .pruner import Pruner
from .snapshot import analysis, as_found
from .surgery import channel_prunable_layers, compact
from .training import torch_threads

# per-round speed-ups whose interquartile range stays within this fraction of their median agree
MAX_SPREAD = 0.10

MASKED_CASES = (("element 50 % (zeros)", "element", 0.5), ("element 90 % (zeros)", "element", 0.9),
                ("2:4 (zeros)", "2:4", 0.5), ("channel 50 % (zeros)", "channel", 0.5))


def compare_latency(models: Mapping[str, nn.Module], example: torch.Tensor, *, baseline: str | None = None,
                    rounds: int = 9, runs: int = 10, warmup: int = 3, threads: int | None = 1) -> pd.DataFrame:
    """Speed-up of each model over ``baseline`` (default: the first) on ``example``, from interleaved rounds.

    After ``warmup`` untimed passes of each model, every round times ``runs`` passes of each model, one pass of
    each in turn (forwards in even rounds, backwards in odd ones), and keeps each model's median. One row per
    model: model, latency_ms (median over rounds; CPU time of the thread with ``threads=1`` on the CPU, see
    :func:`_timer`), speedup (median over rounds of baseline time / model time in that round), speedup_low /
    speedup_high (their quartiles), spread ((high - low) / speedup), rounds. The models are left in the mode
    (train or eval) they were in.
    """
    names = list(models)
    if not names:
        raise ValueError("compare_latency needs at least one model, got none")
    baseline = names[0] if baseline is None else baseline
    if baseline not in models:
        raise ValueError(f"baseline {baseline!r} is not one of the models: {', '.join(map(repr, names))}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a whole number >= 1, got {rounds!r}")
    check_count(runs, "runs", minimum=1)
    check_count(warmup, "warmup")
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode(), torch_threads(threads), _eval(models):
        timers = {name: _timer(model, example, threads) for name, model in models.items()}
        for name in names:
            latency(models[name], example, warmup=warmup, runs=1)  # warm-up, untimed
        for i in range(rounds):
            order = names if i % 2 == 0 else names[::-1]
            passes: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(runs):  # one pass of each model in turn: a burst of load hits all of them alike
                for name in order:
                    passes[name].append(timers[name]())
            for name in names:
                times[name].append(statistics.median(passes[name]))
    rows = []
    for name in names:
        ratios = [b / t for b, t in zip(times[baseline], times[name])]
        low, mid, high = _quartiles(ratios)
        rows.append({"model": name, "latency_ms": statistics.median(times[name]), "speedup": mid,
                     "speedup_low": low, "speedup_high": high, "spread": (high - low) / mid, "rounds": rounds})
    return pd.DataFrame(rows)


def _timer(model: nn.Module, example: torch.Tensor, threads: int | None) -> Callable[[], float]:
    """A function timing one forward pass of the (eval-mode) model in ms. On the CPU with one thread, the CPU
    time of this thread (``time.thread_time``): time the scheduler gives to other processes is not counted, so
    their load barely moves it. Elsewhere (a GPU, several threads), :func:`pruneviz.metrics.latency`'s
    synchronised wall clock."""
    if threads != 1 or model_device(model).type != "cpu":
        return lambda: latency(model, example, warmup=0, runs=1)
    x = input_cast(model)(example.to(model_device(model)))

    def cpu_ms() -> float:
        start = time.thread_time()
        model(x)
        return (time.thread_time() - start) * 1e3

    return cpu_ms


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


@contextmanager
def _eval(models: Mapping[str, nn.Module]) -> Iterator[None]:
    """The models in eval mode for the block, each put back in its own mode after."""
    with ExitStack() as stack:
        for model in models.values():
            stack.enter_context(as_found(model, writes=False))
            model.eval()
        yield


def reliable(table: pd.DataFrame, max_spread: float = MAX_SPREAD) -> bool:
    """Did every model's rounds agree (spread of the per-round speed-ups within ``max_spread``)?"""
    return bool((table.spread <= max_spread).all())


def verdict(table: pd.DataFrame, max_spread: float = MAX_SPREAD) -> str:
    """One sentence on whether the speed-ups of ``table`` can be trusted, naming the largest spread."""
    worst = table.loc[table.spread.idxmax()]
    if reliable(table, max_spread):
        return (f"The rounds agree: every speed-up's interquartile range is within {100 * worst.spread:.0f} % of "
                f"its median (at most {100 * max_spread:.0f} % is asked).")
    return (f"The rounds disagree: {worst.model}'s per-round speed-ups spread over {100 * worst.spread:.0f} % of "
            f"their median (more than {100 * max_spread:.0f} %). The machine's load changed while it measured; "
            "do not read these speed-ups closely; measure again on a quieter machine.")


@analysis
def masked_and_compacted(model: nn.Module, cases=MASKED_CASES, channel_ratio: float = 0.5
                         ) -> dict[str, nn.Module]:
    """{case: model}: ``model`` (dense), copies of it with zeros in dense tensors for each (case, granularity,
    sparsity) of ``cases``, and the channel-pruned one made physically smaller by :func:`compact`.
    ``model`` is left unchanged. What a dense kernel does with zeros, beside what removing them does."""
    import copy

    out = {"dense": model}
    for case, granularity, ratio in cases:
        masked = copy.deepcopy(model)
        layers = channel_prunable_layers(masked) if granularity == "channel" else None
        Pruner(masked, "magnitude", granularity, layers=layers).prune(ratio)
        out[case] = masked
    channel = Pruner(model, "magnitude", "channel", layers=channel_prunable_layers(model))
    out[f"channel {100 * channel_ratio:.0f} % (compacted)"] = compact(model, channel.prune(channel_ratio).masks)
    return out


def latency_table(models: Mapping[str, nn.Module], example: torch.Tensor, batches=(1, 64), *,
                  runs: int | Mapping[int, int] = 10, **options) -> pd.DataFrame:
    """The speed-up over the first model at each batch size (from :func:`compare_latency`, inputs made by
    repeating ``example``'s first item) beside the MAC reduction a dense kernel sees (mac_reduction) and the one
    a kernel that skips zeros could reach (sparse_mac_reduction): one row per (model, batch). ``runs``: passes
    per round, one number or {batch: number} (fewer for large batches keeps the time per round alike)."""
    first = example[:1]
    counts = {name: macs(m, first) for name, m in models.items()}
    nonzero = {name: macs(m, first, sparse=True) for name, m in models.items()}
    base = next(iter(counts.values()))
    parts = []
    for batch in batches:
        x = first.expand(batch, *first.shape[1:]).contiguous()
        part = compare_latency(models, x, runs=runs[batch] if isinstance(runs, Mapping) else runs, **options)
        part.insert(1, "batch", batch)
        part.insert(2, "mac_reduction", [base / counts[n] for n in part.model])
        part.insert(3, "sparse_mac_reduction", [base / nonzero[n] for n in part.model])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)

"""Pruning schedules: when to prune how much during fine-tuning, and a runner that follows one.

A schedule maps a training step to a target sparsity. Three from the lecture:

- :class:`OneShot`: prune to the target at once, then fine-tune (``finetune_steps=0``: prune only).
- :class:`Iterative`: n rounds of prune + fine-tune (Han et al. 2015). By default each round removes the same
  fraction of the weights that survived the round before (geometric spacing: density (1 - s_f)^(k/n) after round
  k); ``spacing="linear"`` raises the sparsity in equal steps, whose last round removes most of the survivors
  (at 95 % in 3 rounds: 86 % of them, against 63 % in every geometric round).
- :class:`AGP`: automated gradual pruning (Zhu & Gupta 2017), a prune every ``every`` steps along the cubic
  ramp  s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3  from s_i at t0 to s_f at t0 + n dt: fast while many
  redundant weights remain, slow near the end where each weight matters.

``schedule.points()`` gives (steps, sparsities) for every step, to plot; the fields are plain numbers a notebook
slider can set. :func:`run_schedule` trains a model along a schedule with a :class:`Pruner` and returns a history.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from torch import nn

from .data import Data
from .errors import check_ratio, unknown_choice
from .evaluation import evaluate
from .finetune import DEFAULT_LR, OptimizerChoice, check_count, check_optimizer
from .pruner import Pruner
from .snapshot import analysis, as_found, rolled_back
from .training import train


class Schedule:
    """Base class: a target sparsity for each training step 0..total_steps."""

    @property
    def total_steps(self) -> int:
        raise NotImplementedError  # abstract: every schedule says how long it trains

    def sparsity_at(self, step: int) -> float:
        raise NotImplementedError  # abstract: every schedule says how sparse at each step

    def targets_at(self, step: int) -> list[float]:
        """The targets the runner prunes to at ``step``, in order (several when rounds share a step)."""
        return [self.sparsity_at(step)]

    def points(self) -> tuple[list[int], list[float]]:
        """(steps, sparsities) at every step from 0 to total_steps: a staircase when drawn as a line."""
        steps = list(range(self.total_steps + 1))
        return steps, [self.sparsity_at(t) for t in steps]

    def prune_steps(self) -> list[int]:
        """The steps at which the target changes from the dense start, i.e. where the runner prunes."""
        steps, values = self.points()
        return [t for t, v, before in zip(steps, values, [0.0, *values]) if v != before]


@dataclass
class OneShot(Schedule):
    """Prune to ``final`` at step 0, then fine-tune ``finetune_steps`` steps (0: prune only)."""

    final: float
    finetune_steps: int = 0

    def __post_init__(self):
        self.final = check_ratio(self.final, "final sparsity")
        check_count(self.finetune_steps, "finetune_steps")

    @property
    def total_steps(self) -> int:
        return self.finetune_steps

    def sparsity_at(self, step: int) -> float:
        return self.final


SPACINGS = ("geometric", "linear")


@dataclass
class Iterative(Schedule):
    """``iterations`` rounds: prune, then fine-tune ``steps_per_iteration`` steps; round k prunes to

    - ``spacing="geometric"`` (default): 1 - (1 - final) ** (k / iterations), the same fraction of the
      survivors in every round (at 95 % in 3 rounds: 63.2 %, 86.4 %, 95 %; 63 % of the survivors each time);
    - ``spacing="linear"``: final * k / iterations (31.7 %, 63.3 %, 95 %: the last round takes 86 % of them).
    """

    final: float
    iterations: int = 3
    steps_per_iteration: int = 50
    spacing: str = "geometric"

    def __post_init__(self):
        self.final = check_ratio(self.final, "final sparsity")
        if check_count(self.iterations, "iterations") < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        check_count(self.steps_per_iteration, "steps_per_iteration")
        if self.spacing not in SPACINGS:
            raise unknown_choice("spacing", self.spacing, SPACINGS)

    @property
    def total_steps(self) -> int:
        return self.iterations * self.steps_per_iteration

    def round_targets(self) -> list[float]:
        """The sparsity each round prunes to, in order (the last is ``final``)."""
        n = self.iterations
        if self.spacing == "linear":
            return [self.final * k / n for k in range(1, n + 1)]
        return [self.final if k == n else 1.0 - (1.0 - self.final) ** (k / n) for k in range(1, n + 1)]

    def survivors_removed(self) -> list[float]:
        """Per round, the fraction of the weights left by the round before that this round removes."""
        densities = [1.0] + [1.0 - s for s in self.round_targets()]
        return [1.0 - after / before if before > 0 else 0.0 for before, after in zip(densities, densities[1:])]

    def sparsity_at(self, step: int) -> float:
        return self.targets_at(step)[-1]

    def targets_at(self, step: int) -> list[float]:
        if self.steps_per_iteration == 0:  # no fine-tuning between rounds: every round prunes at step 0
            return self.round_targets()
        return [self.round_targets()[min(self.iterations, step // self.steps_per_iteration + 1) - 1]]


@dataclass
class AGP(Schedule):
    """Automated gradual pruning: ``prunes`` steps of the cubic ramp, one every ``every`` training steps from
    ``start``, then ``finetune_steps`` more at ``final``. Dense before ``start``."""

    final: float
    initial: float = 0.0
    start: int = 0
    prunes: int = 10
    every: int = 10
    finetune_steps: int = 50

    def __post_init__(self):
        self.final = check_ratio(self.final, "final sparsity")
        self.initial = check_ratio(self.initial, "initial sparsity")
        if self.initial > self.final:
            raise ValueError(f"initial sparsity {self.initial} is above final sparsity {self.final}: "
                             "AGP only prunes more over time")
        for name in ("start", "finetune_steps"):
            check_count(getattr(self, name), name)
        for name in ("prunes", "every"):
            if check_count(getattr(self, name), name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def end(self) -> int:
        """The step at which the final sparsity is reached: t0 + n dt."""
        return self.start + self.prunes * self.every

    @property
    def total_steps(self) -> int:
        return self.end + self.finetune_steps

    def sparsity_at(self, step: int) -> float:
        if step < self.start:
            return 0.0
        k = min(self.prunes, (step - self.start) // self.every)  # pruning happens every dt steps only
        return self.final + (self.initial - self.final) * (1.0 - k / self.prunes) ** 3


def run_schedule(schedule: Schedule, pruner: Pruner, data: Data, eval_data: Data | None = None, *,
                 optimizer: OptimizerChoice = "sgd", lr: float | None = None, batch_size: int = 64, seed: int = 0,
                 progress: bool = True) -> pd.DataFrame:
    """Train ``pruner.model`` in place along ``schedule``; pruned weights stay exactly zero throughout.

    At every step where the schedule's target changes the pruner scores the current (fine-tuned) weights again
    (``Pruner.rescore``: weights pruned earlier are zero, score lowest and stay pruned) and prunes to the target.
    Returns one row per prune and one at the end: step, sparsity (of the pruner's layers), accuracy on
    ``eval_data`` (NaN without it), event ("prune" or "end").
    """
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a OneShot, Iterative or AGP schedule, got {type(schedule).__name__}")
    check_optimizer(optimizer)
    if lr is None:
        lr = DEFAULT_LR.get(optimizer, 1e-3) if isinstance(optimizer, str) else 1e-3
    model = pruner.model
    rows: list[dict] = []
    # a dense pruner starts at target 0; one pruned before is set to the schedule's first target at once
    state = {"step": 0, "target": 0.0 if pruner.sparsity() == 0.0 else None, "trained": False}

    def record(event: str) -> None:
        acc = evaluate(model, eval_data) if eval_data is not None else float("nan")
        rows.append({"step": state["step"], "sparsity": pruner.sparsity(), "accuracy": acc, "event": event})

    def follow() -> None:
        for target in schedule.targets_at(state["step"]):
            if target != state["target"]:
                if state["trained"] or state["target"] not in (None, 0.0):
                    pruner.rescore()  # the survivors of the round before, fine-tuned or not, are scored again
                pruner.prune(target)
                state["target"], state["trained"] = target, False
                record("prune")

    def on_step() -> None:
        state["step"] += 1
        state["trained"] = True
        follow()

    with rolled_back(model, [pruner]):  # a failure leaves the model, its dense copies and the pruner as they were
        follow()
        if schedule.total_steps:
            train(model, data, optimizer=optimizer, lr=lr, batch_size=batch_size, seed=seed, pruner=pruner,
                  progress=progress, on_step=on_step, steps=schedule.total_steps)
        record("end")
    return pd.DataFrame(rows, columns=["step", "sparsity", "accuracy", "event"])


@analysis
def compare_schedules(model: nn.Module, schedules: Mapping[str, Schedule], data: Data, eval_data: Data, *,
                      criterion: str = "magnitude", granularity: str = "element", scope: str = "global",
                      optimizer: OptimizerChoice = "adam", lr: float | None = None, seed: int = 0,
                      progress: bool = True) -> pd.DataFrame:
    """Run each schedule on the model as you hold it; one row each: schedule, sparsity, steps, accuracy.

    A fresh Pruner per schedule, which takes the model's current weights as dense; the model (weights, masks,
    your Pruners' dense copies, modes) is as it was before every run and after the last.
    """
    rows = []
    for name, schedule in schedules.items():
        with as_found(model):
            pruner = Pruner(model, criterion, granularity, scope)
            run_schedule(schedule, pruner, data, optimizer=optimizer, lr=lr, seed=seed, progress=progress)
            rows.append({"schedule": name, "sparsity": pruner.sparsity(), "steps": schedule.total_steps,
                         "accuracy": evaluate(model, eval_data)})
    return pd.DataFrame(rows, columns=["schedule", "sparsity", "steps", "accuracy"])


def lecture_schedules(final: float, budget: int = 69, rounds: int = 3,
                      han_retraining: bool = False) -> dict[str, Schedule]:
    """The lecture's four at one equal budget: prune only; one-shot + ``budget`` steps of fine-tuning;
    ``rounds`` rounds of geometric iterative pruning, ``budget / rounds`` steps each; AGP (10 prunes over about
    two thirds of the budget, the rest fine-tuning at the target). Every method that fine-tunes trains exactly
    ``budget`` steps in all, so the comparison is of schedules, not of training time. The default, 69 steps, is
    about four epochs of the digits training split at batch 64.

    ``han_retraining``: also the iterative pruning of Han et al. 2015's Fig. 5, each round retrained as long as
    the one-shot fine-tuning (``rounds`` times the budget in all), named ``"iterative (3 rounds x 69)"``."""
    check_count(budget, "budget")
    if check_count(rounds, "rounds") < 1 or budget % rounds:
        raise ValueError(f"budget must be a multiple of rounds >= 1 (rounds of equal length), got "
                         f"budget={budget}, rounds={rounds}")
    every = max(1, 2 * budget // 30)
    if 10 * every > budget:
        raise ValueError(f"budget must be at least 10 steps (one per AGP prune), got {budget}")
    schedules: dict[str, Schedule] = {
        "prune only": OneShot(final), "one-shot + fine-tune": OneShot(final, budget),
        f"iterative ({rounds} rounds)": Iterative(final, rounds, budget // rounds),
        "AGP": AGP(final, prunes=10, every=every, finetune_steps=budget - 10 * every)}
    if han_retraining:
        schedules[f"iterative ({rounds} rounds x {budget})"] = Iterative(final, rounds, budget)
    return schedules


@analysis
def schedule_sweep(model: nn.Module, sparsities: Sequence[float], data: Data, eval_data: Data, *,
                   budget: int = 69, rounds: int = 3, include: Sequence[str] | None = None,
                   seeds: Sequence[int] = (0,), han_retraining: bool = False, **options) -> pd.DataFrame:
    """:func:`compare_schedules` over :func:`lecture_schedules` at each target sparsity and fine-tuning seed:
    Han et al. 2015's figure (accuracy against the fraction of weights pruned, per schedule) at one equal budget.

    ``include``: the schedule names to run (default all four, five with ``han_retraining``: see
    :func:`lecture_schedules`); ``seeds``: the fine-tuning seeds (data order).
    Returns columns target, seed, schedule, sparsity, steps, accuracy and loss (the dense accuracy on
    ``eval_data`` minus the accuracy); the model is left as it was.
    """
    sparsities = [check_ratio(s, "each of sparsities") for s in sparsities]
    if not sparsities:
        raise ValueError("sparsities is empty; give at least one target sparsity, e.g. [0.5, 0.8, 0.9]")
    dense = evaluate(model, eval_data)
    tables = []
    for final in sparsities:
        schedules = lecture_schedules(final, budget, rounds, han_retraining)
        if include is not None:
            unknown = [name for name in include if name not in schedules]
            if unknown:
                raise unknown_choice("schedule", unknown[0], schedules)
            schedules = {name: schedules[name] for name in include}
        for seed in seeds:
            table = compare_schedules(model, schedules, data, eval_data, seed=seed, **options)
            tables.append(table.assign(target=final, seed=seed))
    table = pd.concat(tables, ignore_index=True)
    table["loss"] = dense - table["accuracy"]
    return table[["target", "seed", "schedule", "sparsity", "steps", "accuracy", "loss"]]


def schedule_history(model: nn.Module, schedule: Schedule, data: Data, eval_data: Data, *,
                     criterion: str = "magnitude", granularity: str = "element", scope: str = "global",
                     **options) -> pd.DataFrame:
    """:func:`run_schedule` with a fresh Pruner from the model's current weights, which it gets back after: one
    schedule's history as a table (for ``artefacts.table``, which cannot key on a Pruner)."""
    original = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        return run_schedule(schedule, Pruner(model, criterion, granularity, scope), data, eval_data, **options)
    finally:
        model.load_state_dict(original)

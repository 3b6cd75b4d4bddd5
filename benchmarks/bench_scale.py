"""The explorer at the lecture lab's scale: digits-cnn, the lab's VGG (9.2M), a CIFAR ResNet-18 (11.2M) and a
ResNet-50 (23.5M), interleaved in one run, on synthetic images (timing does not depend on the pixel values).

Per model, each a median over the rounds (a round measures every model once, so the machine's load falls on
all of them alike):
- Pruner build: a global magnitude element Pruner (scores and the sort of all of them);
- re-prune: a +0.01 move of that Pruner, and the share of the weights it wrote (``pruner.last_write_count``,
  n/a when the Pruner does not count); against torch.nn.utils.prune.global_unstructured + remove (from the
  dense weights, as torch has no cache);
- first frame: a slider move of the explorer (same choice, the largest layer shown) to its first figure drawn,
  for a jump to a random value (a click on the slider's track) and for a +0.01 move after it (a drag);
- move-to-readout: the same move until the readout holds the exact accuracy on all the images;
- memory per weight: ``pruner.memory_bytes()`` over the weights it covers (n/a when the Pruner cannot say).
On the GPU too when there is one. Run: python benchmarks/bench_scale.py [--quick]
"""
from __future__ import annotations

import copy
import gc
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
import torch.nn.utils.prune as torch_prune  # noqa: E402
from torch import nn  # noqa: E402

import pruneviz  # noqa: E402
from pruneviz import zoo  # noqa: E402

THREADS = 1  # the machine is shared: one thread keeps timings steady (as bench_slider)
IMAGES, QUICK_IMAGES = 1000, 64
ROUNDS, QUICK_ROUNDS = 3, 1
MOVES_PER_ROUND = 3  # re-prunes timed per round (cheap); the explorer moves once per round (it evaluates)
STEP = 0.01
GRID = (0.0, 0.5)  # the explorer's accuracy curve: two points, so opening it costs two evaluations here
COLUMNS = ("model", "device", "weights", "build ms", "re-prune ms", "re-prune writes", "torch.prune ms",
           "re-prune speed-up", "first frame ms", "drag first frame ms", "move-to-readout ms", "bytes/weight")


def resnet50(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-50 layout (bottleneck blocks 3, 4, 6, 3) from benchmarks/coupled_models.py, with a
    10-class head: torchvision is not a dependency of the kit."""
    from benchmarks.coupled_models import Bottleneck, ResNet

    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes)


@dataclass
class Case:
    """One model of the benchmark: how to build it and the shape of one input."""
    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]


CASES = (
    Case("digits-cnn", lambda: zoo.load("digits-cnn", device="cpu"), (1, 8, 8)),
    Case("cifar10-vgg", lambda: zoo.build("cifar10-vgg"), (3, 32, 32)),
    Case("cifar10-resnet18", lambda: zoo.build("cifar10-resnet18"), (3, 32, 32)),
    Case("resnet50", resnet50, (3, 32, 32)),
)


@dataclass
class Measured:
    """The samples of one (model, device) over the rounds, and what they hold."""
    weights: int = 0
    bytes_per_weight: float | None = None
    build: list[float] = field(default_factory=list)
    reprune: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)  # share of the weights a re-prune wrote
    torch_prune: list[float] = field(default_factory=list)
    first_frame: list[float] = field(default_factory=list)
    drag_frame: list[float] = field(default_factory=list)  # a +0.01 move after the jump (a drag of the slider)
    readout: list[float] = field(default_factory=list)


def _ms(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - start) * 1e3, result


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _memory_per_weight(pruner) -> tuple[int, float | None]:
    weights = sum(mask.numel() for mask in pruner.masks.values())
    memory = getattr(pruner, "memory_bytes", None)  # the Pruner reports what it holds (issue 22)
    return weights, (memory() / weights if callable(memory) else None)


def _timed_move(explorer, value: float, device: str) -> tuple[float, float]:
    """(first frame ms, move-to-readout ms) of one slider move: the first frame ends when the first figure
    draw after the move returns; the readout when the exact accuracy is in (``settle()`` does the work an
    explorer leaves for the slider's rest, where it has one)."""
    draws: list[float] = []
    draw = explorer.figure.draw

    def recording(*args, **kwargs):
        result = draw(*args, **kwargs)
        draws.append(time.perf_counter())
        return result

    explorer.figure.draw = recording
    start = time.perf_counter()
    try:
        explorer.sparsity.value = value
        settle = getattr(explorer, "settle", None)
        if settle is not None:
            settle()
        _sync(device)
        end = time.perf_counter()
    finally:
        del explorer.figure.draw  # the method of the class again
    if explorer.errors.errors:
        raise RuntimeError(f"the explorer refused the move to {value}: {explorer.errors.errors[-1]}")
    first = draws[0] if draws else end
    return (first - start) * 1e3, (end - start) * 1e3


def _torch_global(modules: list[nn.Module], dense: list[torch.Tensor], ratio: float, device: str) -> float:
    with torch.no_grad():
        for module, weight in zip(modules, dense):
            module.weight.copy_(weight)
    start = time.perf_counter()
    torch_prune.global_unstructured([(m, "weight") for m in modules], torch_prune.L1Unstructured, amount=ratio)
    for module in modules:
        torch_prune.remove(module, "weight")
    _sync(device)
    return (time.perf_counter() - start) * 1e3


class Bench:
    """Everything one (model, device) holds between rounds: the model, its explorer, a torch copy."""

    def __init__(self, case: Case, device: str, images: int, seed: int):
        self.case, self.device = case, device
        torch.manual_seed(seed)
        self.model = case.build().to(device).eval()
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(images, *case.input_shape, generator=generator)
        y = torch.randint(0, 10, (images,), generator=generator)
        self.data = (x.to(device), y.to(device))
        self.rng = random.Random(seed)
        self.measured = Measured()
        self.pruner = None
        # the explorer and torch.nn.utils.prune work on copies of their own: a write by one would be a change made
        # behind the others' backs (the explorer would forget the accuracies it holds and evaluate them again)
        explored = copy.deepcopy(self.model)
        self.torch_model = copy.deepcopy(self.model)
        self.torch_modules = [m for m in self.torch_model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        self.torch_dense = [m.weight.detach().clone() for m in self.torch_modules]
        from pruneviz.widgets import explore

        layers = {n: m for n, m in self.model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
        largest = max(layers, key=lambda name: layers[name].weight.numel())  # the histogram's costliest case
        self.explorer = explore(explored, self.data, figure="agg", scope="global", layer=largest, grid=GRID)
        settle = getattr(self.explorer, "settle", None)
        if settle is not None:
            settle()  # the curve filled before the moves are timed
        _timed_move(self.explorer, 0.3, device)  # warm-up

    def round(self) -> None:
        """One sample of every measure."""
        m = self.measured
        self.pruner = None
        gc.collect()
        ms, self.pruner = _ms(pruneviz.Pruner, self.model, "magnitude", "element", "global")
        _sync(self.device)
        m.build.append(ms)
        m.weights, m.bytes_per_weight = _memory_per_weight(self.pruner)
        for _ in range(MOVES_PER_ROUND):
            ratio = round(self.rng.uniform(0.1, 0.9), 2)
            self.pruner.prune(ratio)
            _sync(self.device)
            ms, _ = _ms(self.pruner.prune, ratio + STEP)
            _sync(self.device)
            m.reprune.append(ms)
            written = getattr(self.pruner, "last_write_count", None)  # the Pruner counts its writes (issue 22)
            if written is not None:
                m.writes.append(written / m.weights)
        self.pruner.restore()
        self.pruner = None
        m.torch_prune.append(_torch_global(self.torch_modules, self.torch_dense, round(self.rng.uniform(0.1, 0.9), 2),
                                           self.device))
        value = round(self.rng.uniform(0.1, 0.9), 2)
        first, readout = _timed_move(self.explorer, value, self.device)
        m.first_frame.append(first)
        m.readout.append(readout)
        drag, _ = _timed_move(self.explorer, round(value + STEP, 2), self.device)  # its rest's evaluation untimed
        m.drag_frame.append(drag)

    def close(self) -> None:
        self.explorer.session.restore()


def table_rows(benches: list[Bench]) -> list[dict]:
    """One dict per (model, device), keyed by COLUMNS: medians; bytes/weight None when the Pruner cannot say."""
    med = statistics.median
    rows = []
    for b in benches:
        m = b.measured
        rows.append({"model": b.case.name, "device": b.device, "weights": m.weights, "build ms": med(m.build),
                     "re-prune ms": med(m.reprune), "re-prune writes": med(m.writes) if m.writes else None,
                     "torch.prune ms": med(m.torch_prune),
                     "re-prune speed-up": med(m.torch_prune) / med(m.reprune), "first frame ms": med(m.first_frame),
                     "drag first frame ms": med(m.drag_frame),
                     "move-to-readout ms": med(m.readout), "bytes/weight": m.bytes_per_weight})
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as a Markdown table: times 3 significant digits, ratios 3 decimals, n/a where unknown."""
    from benchmarks.report import format_value

    def cell(column: str, value) -> str:
        if value is None:
            return "n/a"
        if column in ("model", "device"):
            return str(value)
        if column == "weights":
            return f"{value / 1e6:.2f}M"
        if column == "re-prune speed-up":
            return f"{value:.3f}x"
        if column == "re-prune writes":
            return f"{100 * value:.3f} %"
        if column == "bytes/weight":
            return f"{value:.1f}"
        return format_value(float(value))

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" if c in ("model", "device") else "---:"
                                                               for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def measure(quick: bool = False, cases: tuple[Case, ...] | None = None, images: int | None = None,
            devices: tuple[str, ...] | None = None, log: Callable[[str], None] = lambda _: None) -> list[dict]:
    """The table rows (see table_rows), every (model, device) measured once per round, in turn."""
    cases = cases or CASES
    images = images or (QUICK_IMAGES if quick else IMAGES)
    devices = devices or (("cpu", "cuda") if torch.cuda.is_available() else ("cpu",))
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        benches = []
        for device in devices:
            for i, case in enumerate(cases):
                log(f"opening {case.name} on {device} ({images} images) ...")
                benches.append(Bench(case, device, images, seed=i))
        for r in range(QUICK_ROUNDS if quick else ROUNDS):
            for bench in benches:
                log(f"round {r + 1}: {bench.case.name} on {bench.device}")
                bench.round()
        for bench in benches:
            bench.close()
        return table_rows(benches)
    finally:
        torch.set_num_threads(previous)


_REPORT = (("weights", "weights", "weights"), ("build ms", "Pruner build (global magnitude element)", "ms"),
           ("re-prune ms", "re-prune of a +0.01 move (median)", "ms"),
           ("re-prune writes", "share of the weights a +0.01 re-prune writes (median)", "ratio"),
           ("torch.prune ms", "torch.nn.utils.prune global_unstructured + remove (median)", "ms"),
           ("re-prune speed-up", "speed-up re-prune (torch / cached)", "x"),
           ("first frame ms", "explorer move to first frame (median)", "ms"),
           ("drag first frame ms", "explorer +0.01 move to first frame (median)", "ms"),
           ("move-to-readout ms", "explorer move to readout with accuracy (median)", "ms"),
           ("bytes/weight", "Pruner memory per weight", "bytes"))


def run(quick: bool = False) -> list[dict]:
    """Rows {benchmark, case, measure, value, unit} for benchmarks/report.py (a quantity the Pruner cannot
    report is left out)."""
    rows = []
    for row in measure(quick):
        for column, measure_name, unit in _REPORT:
            if row[column] is not None:
                rows.append({"benchmark": "scale", "case": f"{row['model']} {row['device']}", "measure": measure_name,
                             "value": round(float(row[column]), 3), "unit": unit})
    return rows


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    images = QUICK_IMAGES if quick else IMAGES
    print(f"# scale benchmark: torch {torch.__version__}, {THREADS} thread, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), load average {os.getloadavg()[0]:.1f}, "
          f"{images} synthetic images, {QUICK_ROUNDS if quick else ROUNDS} rounds, medians")
    print(format_table(measure(quick, log=lambda line: print(line, file=sys.stderr))))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()

"""The README's zoo table says what `python -m pruneviz.zoo stats` measures on the shipped weights, for both
tasks."""
import re
from pathlib import Path

import pytest

import pruneviz
from pruneviz.zoo.stats import accuracy_stats, layer_stats

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _row(name: str) -> list[str]:
    line = next((line for line in README.splitlines() if line.startswith(f"| `{name}` |")), None)
    assert line is not None, f"the README's zoo table has no row for {name}"
    return [cell.strip() for cell in line.strip("|").split("|")]


def _accuracy(row) -> str:
    return f"{100 * row['accuracy']:.1f} % ({100 * row['ci_low']:.1f}-{100 * row['ci_high']:.1f})"


@pytest.mark.parametrize("name", pruneviz.zoo.NAMES)
def test_zoo_table_matches_the_stats(name):
    _, task, _, params, kurt, corr, acc, standard = _row(name)
    assert task == pruneviz.zoo.task(name)
    table = layer_stats(name)
    big = table[table["weights"] > 1000]
    assert params == f"{pruneviz.count_parameters(pruneviz.zoo.load(name, 'cpu')):,}"
    assert kurt == f"{big['kurtosis'].min():.1f}-{big['kurtosis'].max():.1f}"
    assert corr == f"{big['init_correlation'].min():.2f}-{big['init_correlation'].max():.2f}"
    measured = accuracy_stats(name).set_index("split")
    assert acc == _accuracy(measured.loc["test"])
    assert standard == (_accuracy(measured.loc["standard_test"]) if "standard_test" in measured.index else "-")


def test_split_sizes_in_the_readme_are_the_data():
    sizes = tuple(map(len, pruneviz.data.digits()))
    assert re.search(rf"{sizes[0]} training / {sizes[1]} validation / {sizes[2]} test images", README)
    sizes = tuple(f"{len(split):,}" for split in pruneviz.data.mnist1d())
    assert re.search(rf"{sizes[0]} training / {sizes[1]} validation / {sizes[2]} test signals", README)

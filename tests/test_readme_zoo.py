"""The README's zoo table says what `python -m pruneviz.zoo stats` measures on the shipped weights."""
import re
from pathlib import Path

import pytest

import pruneviz
from pruneviz.zoo.stats import accuracy_stats, layer_stats

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _row(name: str) -> list[str]:
    line = next(line for line in README.splitlines() if line.startswith(f"| `{name}` |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.parametrize("name", pruneviz.zoo.NAMES)
def test_zoo_table_matches_the_stats(name):
    _, _, params, kurt, corr, acc = _row(name)
    table = layer_stats(name)
    big = table[table["weights"] > 1000]
    assert params == f"{pruneviz.count_parameters(pruneviz.zoo.load(name, 'cpu')):,}"
    assert kurt == f"{big['kurtosis'].min():.1f}-{big['kurtosis'].max():.1f}"
    assert corr == f"{big['init_correlation'].min():.2f}-{big['init_correlation'].max():.2f}"
    test = accuracy_stats(name).set_index("split").loc["test"]
    assert acc == f"{100 * test['accuracy']:.1f} % ({100 * test['ci_low']:.1f}-{100 * test['ci_high']:.1f})"


def test_split_sizes_in_the_readme_are_the_data():
    sizes = tuple(map(len, pruneviz.data.digits()))
    assert re.search(rf"{sizes[0]} training / {sizes[1]} validation / {sizes[2]} test images", README)

"""Colour is never the only cue, and the widgets say in words what they show (the browser side of the slider,
the scope radios and the figure's text is checked in tests/e2e)."""
import html
import itertools

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

import pruneviz
from pruneviz.plot import sensitivity_curves
from pruneviz.plot.theme import ACCENT, DENSE, PALETTE, series_style
from pruneviz.widgets.accessible import Picture, Slider
from pruneviz.widgets.base import sparsity_slider

matplotlib.use("Agg")


def test_accent_and_dense_grey_are_no_series_colour():
    assert ACCENT not in PALETTE and DENSE not in PALETTE
    assert len(set(PALETTE)) == len(PALETTE)


def test_series_never_differ_by_colour_alone():
    styles = [series_style(i) for i in range(32)]
    looks = [(s["color"], s["marker"], s["linestyle"]) for s in styles]
    assert len(set(looks)) == len(looks)  # no two series look the same
    for a, b in itertools.combinations(styles, 2):  # and any two differ by marker or line style
        assert (a["marker"], a["linestyle"]) != (b["marker"], b["linestyle"])


def test_sensitivity_curves_with_five_layers_use_five_markers():
    scan = pd.DataFrame([(f"conv{i}", s, 1 - s * i / 10) for i in range(5) for s in (0.0, 0.5, 0.9)],
                        columns=["layer", "sparsity", "accuracy"])
    ax = Figure().subplots()
    sensitivity_curves(scan, floor=0.8, ax=ax)
    curves = [line for line in ax.get_lines() if line.get_label().startswith("conv")]
    assert len({line.get_marker() for line in curves}) == 5
    floor = next(line for line in ax.get_lines() if line.get_label() == "accuracy floor")
    assert floor.get_color() not in [line.get_color() for line in curves]


def test_sparsity_slider_holds_clean_two_decimal_steps():
    slider = sparsity_slider(0.0, "pruneviz-test")
    assert (slider.min, slider.max, slider.step, slider.decimals) == (0.0, 1.0, 0.01, 2)
    assert slider.tooltip and slider.description == "sparsity"  # its label: the accessible name
    slider.value = 90 * 0.01  # 0.9000000000000001, what step arithmetic gives
    assert slider.value == 0.9
    slider.value = 1.5
    assert slider.value == 1.0  # still clamped to the range
    slider.value = 0.955
    assert slider.value == 0.955  # values off the grid set from code are kept


@pytest.fixture(scope="module")
def explorer(digits):
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    return pruneviz.widgets.explore(model, digits.test, calibration=digits.val, figure="inline", layer="conv2",
                                    grid=(0.0, 0.5, 0.9))


def test_explorer_scope_is_a_radio_group_and_the_figure_is_described(explorer):
    assert isinstance(explorer.scope, widgets.RadioButtons)  # <input type=radio>: its checked state is exposed
    explorer.sparsity.value = 0.5
    readout = explorer.readout_text()  # the exact numbers (evaluated now): the description follows them
    text = explorer.figure.description
    assert "conv2" in text and "magnitude" in text and readout in text
    assert "sparsity 0.500" in text
    assert explorer.figure.image.alt == text  # the inline picture's alt text
    assert isinstance(explorer.figure.image, Picture)


def test_slider_is_a_value_widget_that_interact_takes():
    slider = Slider(0.3, min=0.1, max=0.9, step=0.1, description="removed")
    shown = []
    widgets.interactive(lambda removed: shown.append(removed), removed=slider)
    assert shown[-1] == 0.3
    slider.value = 0.7
    assert shown[-1] == 0.7


@pytest.mark.parametrize("kwargs, words", [({"min": 1.0, "max": 0.0}, "min must be below max"),
                                            ({"step": 0.0}, "step must be positive")])
def test_slider_refuses_a_range_it_cannot_show(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Slider(0.5, **kwargs)


def test_ipympl_figure_has_a_caption_in_words():
    previous = matplotlib.get_backend()
    plt.switch_backend("module://ipympl.backend_nbagg")  # what %matplotlib widget does
    try:
        figure = pruneviz.widgets.LiveFigure((2, 2), mode="ipympl")
        figure.describe("a <b> test")
        assert 'role="img"' in figure.caption.value and "a &lt;b&gt; test" in figure.caption.value
        assert figure.caption in figure.widget.children
        plt.close(figure.figure)
    finally:
        plt.switch_backend(previous)

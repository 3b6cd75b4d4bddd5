"""pruneviz.widgets: moving the controls as a user would; the artists show what the pruned model says."""
import copy
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pruneviz  # noqa: E402
from pruneviz import metrics, plot  # noqa: E402
from pruneviz.criteria import REGISTRY, Criterion, register  # noqa: E402
from pruneviz.widgets import CachedEvaluator, LiveFigure, compare, explore, valid_granularities  # noqa: E402

from .conftest import same_state, state_of  # noqa: E402

GRID = (0.0, 0.5, 0.9)


@pytest.fixture
def explorer(cnn, digits):
    return explore(cnn, digits.test, figure="agg", layer="conv3", grid=GRID)


def _check_artists(explorer, test):
    """Every artist against what the pruned model's weights say."""
    model = explorer.session.model
    layer = explorer.layer.value
    weight = model.get_submodule(layer).weight.detach()
    dense = explorer.session.dense_weight(layer).double().numpy().ravel()
    kept = weight.double().numpy().ravel()
    hist = explorer.histogram
    np.testing.assert_array_equal(hist.kept_counts, np.histogram(dense[kept != 0], hist.edges)[0])
    np.testing.assert_array_equal(np.asarray(explorer.mask.image.get_array()),
                                  np.ma.masked_invalid(plot.kernel_grid(weight != 0, 32, 32)))
    state = explorer.last_readout  # the exact readout: the accuracy evaluated now if still pending
    sparsity, accuracy = explorer.curves.current_point()
    assert accuracy == pytest.approx(pruneviz.evaluate(model, test), abs=1e-12)
    assert sparsity == pytest.approx(explorer.sparsity.value)
    assert state.accuracy == pruneviz.evaluate(model, test)
    assert state.sparsity == pytest.approx(metrics.sparsity(model))
    assert state.nonzero_parameters == metrics.count_parameters(model, nonzero=True)
    assert state.sparse_bytes == metrics.size_bytes(model, sparse=True)
    assert state.sparse_macs == pytest.approx(metrics.macs(model, torch.zeros(1, 1, 8, 8), sparse=True), abs=1)


def test_slider_move_updates_every_artist(explorer, digits):
    for value in (0.6, 0.2, 0.93):
        explorer.sparsity.value = value
        _check_artists(explorer, digits.test)
    assert explorer.session.pruner.sparsity() == pytest.approx(0.93, abs=0.01)
    assert "accuracy" in explorer.readout.value and not explorer.errors.errors


def test_controls_switch_pruner_layer_and_scope(explorer, digits):
    explorer.sparsity.value = 0.5
    explorer.granularity.value = "channel"
    _check_artists(explorer, digits.test)
    explorer.scope.value = "global"
    explorer.layer.value = "conv2"
    _check_artists(explorer, digits.test)
    assert explorer.only_layer.disabled
    explorer.scope.value = "local"
    explorer.only_layer.value = True
    _check_artists(explorer, digits.test)
    assert set(explorer.session.pruner.layer_sparsity().values()) != {0.5}  # only conv2 is pruned
    # the element curve went when the x-axis became a share of channels: one quantity per axis
    assert len(explorer.curves.lines) == 3 and all("channel" in label for label in explorer.curves.lines)
    assert not explorer.errors.errors


def test_invalid_choice_is_shown_not_raised(explorer, digits):
    explorer.granularity.value = "channel"
    explorer.sparsity.value = 0.5
    before = state_of(explorer.session.model)
    explorer.layer.value = "fc"  # the output layer has no prunable channels
    explorer.only_layer.value = True
    assert isinstance(explorer.last_error, ValueError)
    assert "fc" in explorer.errors.widget.value and "pruneviz-error" in explorer.errors.widget.value
    assert same_state(before, state_of(explorer.session.model))
    assert explorer.only_layer.value is False  # the control shows what the model holds, not the refused choice
    explorer.sparsity.value = 0.4  # the next accepted move clears the message
    assert explorer.errors.widget.value == ""


def test_refused_choice_puts_every_control_back(cnn, mlp, digits):
    """Issue 13, item 11: after a refusal the dropdowns, the repr and the readout show what the model holds."""
    explorer = explore(cnn, digits.test, figure="agg", layer="fc", grid=GRID)
    explorer.only_layer.value = True
    explorer.sparsity.value = 0.6  # fc alone, element granularity: fine
    before, shown = state_of(cnn), repr(explorer)
    explorer.granularity.value = "channel"  # fc's channels are the classes: refused
    assert isinstance(explorer.last_error, ValueError) and "fc" in str(explorer.last_error)
    assert explorer.granularity.value == "element" and repr(explorer) == shown
    assert explorer.session.key == ("magnitude", "element", "local") and same_state(before, state_of(cnn))
    assert explorer.last_readout.accuracy == pruneviz.evaluate(cnn, digits.test)

    other = explore(mlp, digits.test, figure="agg", grid=GRID)
    other.criterion.value = "scaling"  # needs a BatchNorm after a layer: the MLP has none
    assert isinstance(other.last_error, ValueError)
    assert (other.criterion.value, other.granularity.value) == ("magnitude", "element")
    assert list(other.granularity.options) == valid_granularities(mlp, "magnitude")
    assert repr(other).startswith("Explorer(criterion='magnitude', granularity='element'")


class Broken(Criterion):
    name = "broken-for-test"

    def scores(self, model, layers, granularity, data=None):
        raise RuntimeError("scores exploded")


class NeedsData(Criterion):
    name = "needs-data-for-test"
    needs_data = True
    granularities = ("channel",)
    seen = []

    def scores(self, model, layers, granularity, data=None):
        NeedsData.seen.append(data)
        return {n: torch.arange(i.module.weight.shape[0], dtype=torch.float32) for n, i in layers.items()}


@pytest.fixture
def test_criteria():
    register(Broken)
    register(NeedsData)
    yield
    REGISTRY.pop(Broken.name)
    REGISTRY.pop(NeedsData.name)


def test_data_criteria_get_calibration_and_bugs_show_traceback(cnn, digits, test_criteria):
    calibration = digits.train
    explorer = explore(cnn, digits.test, calibration=calibration, figure="agg", grid=GRID)
    assert {"broken-for-test", "needs-data-for-test"} <= set(explorer.criterion.options)
    explorer.criterion.value = "needs-data-for-test"
    # channels, and the coupled channel groups made of them (issue 21: granularity "group")
    assert list(explorer.granularity.options) == ["channel", "group"] == valid_granularities(cnn, "needs-data-for-test")
    assert NeedsData.seen[-1] is calibration
    assert explorer.session.key == ("needs-data-for-test", "channel", "local")
    explorer.criterion.value = "broken-for-test"
    assert isinstance(explorer.last_error, RuntimeError)
    assert "scores exploded" in explorer.errors.widget.value and "traceback" in explorer.errors.widget.value
    assert explorer.session.key == ("needs-data-for-test", "channel", "local")  # the previous pruner stays


def test_cached_evaluator_equals_evaluate(cnn, resnet, digits):
    test = digits.test
    evaluator = CachedEvaluator(cnn, test)
    pruner = pruneviz.Pruner(cnn, "magnitude", "element")
    assert evaluator.accuracy() == pruneviz.evaluate(cnn, test)
    # after a move of every layer (0.6, then conv1-3 back to dense) the cache fills at the next move that leaves
    # the first layers alone ({"conv4": 0.5}), and serves the one after
    for ratios in ({"fc": 0.9}, 0.6, {"conv4": 0.8, "fc": 0.5}, {"conv4": 0.5}, {"conv4": 0.3}):
        pruner.prune(ratios)
        assert evaluator.accuracy() == pruneviz.evaluate(cnn, test)
    assert evaluator.stages_run == len(cnn) - 10  # from conv4 (stage 10) on: its input came from the cache
    pruner.prune({"conv4": 0.3, "fc": 0.95})
    evaluator.accuracy()
    assert evaluator.stages_run == 1
    other = CachedEvaluator(resnet, test)  # not a Sequential: a full forward, same answer
    pruneviz.Pruner(resnet, "l2", "channel").prune(0.4)
    assert other.accuracy() == pruneviz.evaluate(resnet, test)


@pytest.fixture(scope="module")
def shared_explorer():
    test = pruneviz.data.digits().test
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    return explore(model, test, figure="agg", grid=GRID), state_of(model)


moves = st.lists(st.tuples(st.sampled_from(["magnitude", "l2", "random"]),
                           st.sampled_from(["element", "2:4", "vector", "kernel", "channel", "input_channel"]),
                           st.sampled_from(["local", "global"]),
                           st.sampled_from(["conv1", "conv2", "conv3", "conv4", "fc"]),
                           st.booleans(),
                           st.floats(0.0, 0.99)), min_size=1, max_size=4)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves)
def test_random_moves_raise_nothing_and_zero_restores(shared_explorer, steps):
    explorer, dense = shared_explorer
    explorer.errors.errors.clear()
    for criterion, granularity, scope, layer, only, value in steps:
        explorer.criterion.value = criterion
        if granularity in explorer.granularity.options:
            explorer.granularity.value = granularity
        explorer.scope.value = scope
        explorer.layer.value = layer
        if not explorer.only_layer.disabled:
            explorer.only_layer.value = only and layer != "fc" or (only and granularity != "channel")
        explorer.sparsity.value = round(value, 2)
    unexpected = [e for e in explorer.errors.errors if not isinstance(e, ValueError)]
    assert not unexpected, unexpected
    explorer.only_layer.value = False
    explorer.sparsity.value = 0.0
    assert not explorer.errors.widget.value
    assert same_state(dense, state_of(explorer.session.model))


def test_compare_side_by_side(cnn, digits):
    before = state_of(cnn)
    view = compare(cnn, digits.test, ["magnitude", ("random", "element"), ("l2", "channel")], sparsity=0.6,
                   layer="conv2", figure="agg", grid=GRID)
    assert len(view.masks) == 3 and len(view.curves.lines) == 3
    view.sparsity.value = 0.7
    for label, session in view.sessions.items():
        assert view.readouts[label].accuracy == pruneviz.evaluate(session.model, digits.test)
        # element and channel mixed: the x-axis is the weight sparsity each gave (one quantity)
        assert view.curves.current_point(label) == pytest.approx((view.readouts[label].sparsity,
                                                                  view.readouts[label].accuracy))
        mask = session.model.conv2.weight != 0
        np.testing.assert_array_equal(np.asarray(view.masks[label].image.get_array()),
                                      np.ma.masked_invalid(plot.kernel_grid(mask, 32, 32)))
    masks = [s.mask("conv2") for s in view.sessions.values()]
    assert not torch.equal(masks[0], masks[1])
    assert same_state(before, state_of(cnn))  # each criterion worked on its own copy
    with pytest.raises(ValueError, match="two or more"):
        compare(cnn, digits.test, ["magnitude"], figure="agg")


def test_inline_figure_is_a_fixed_size_png(cnn, digits):
    explorer = explore(copy.deepcopy(cnn), digits.test, figure="inline", grid=GRID)
    first = explorer.figure.image.value
    explorer.sparsity.value = 0.9
    second = explorer.figure.image.value
    assert first[:8] == second[:8] == b"\x89PNG\r\n\x1a\n" and first != second
    assert explorer.figure.widget.layout.height == explorer.figure.widget.layout.height  # fixed
    with pytest.raises(ValueError, match="valid choices"):
        LiveFigure((2, 2), mode="svg")


def test_css_classes_for_browser_tests(explorer):
    classes = {"pruneviz-explorer": explorer, "pruneviz-sparsity": explorer.sparsity,
               "pruneviz-criterion": explorer.criterion, "pruneviz-granularity": explorer.granularity,
               "pruneviz-scope": explorer.scope, "pruneviz-layer": explorer.layer,
               "pruneviz-only-layer": explorer.only_layer, "pruneviz-readout": explorer.readout,
               "pruneviz-figure": explorer.figure.widget, "pruneviz-message": explorer.errors.widget}
    for css, widget in classes.items():
        assert css in widget._dom_classes, css


def test_bad_arguments_raise(cnn, digits):
    with pytest.raises(ValueError, match="valid choices"):
        explore(cnn, digits.test, criterion="nope", figure="agg")
    with pytest.raises(ValueError, match="valid choices"):
        explore(cnn, digits.test, layer="conv9", figure="agg")


def test_a_move_shows_the_masks_first_then_the_accuracy_and_ends_as_a_full_draw(cnn, digits):
    """A move draws one frame (masks, histogram, the accuracy read off the curve); the exact accuracy comes in a
    second frame of the curve's Axes only, and the two end exactly where a full redraw does."""
    explorer = explore(copy.deepcopy(cnn), digits.test, figure="agg", grid=GRID)
    explorer.settle()  # the curve: the first frame of a move then reads its accuracy off it
    canvas = explorer.figure.figure.canvas
    frames = []
    draw = explorer.figure.draw

    def recording_draw(*args, **kwargs):
        draw(*args, **kwargs)
        frames.append((kwargs, np.asarray(canvas.buffer_rgba()).copy()))

    explorer.figure.draw = recording_draw
    for value in (0.6, 0.61, 0.85):
        frames.clear()
        explorer.sparsity.value = value
        assert [kwargs.get("only") for kwargs, _ in frames] == [None]
        assert explorer.shown_readout.estimated
        explorer.readout_text()  # settles: the exact accuracy
        assert [kwargs.get("only") for kwargs, _ in frames] == [None, explorer.curves.ax]
        first, last = frames[0][1], frames[-1][1]
        explorer.figure.draw(full=True)
        full = np.asarray(canvas.buffer_rgba())
        np.testing.assert_array_equal(last, full)  # the two frames end exactly where a full redraw does
        assert not np.array_equal(first, last)  # the accuracy point moved (and turned exact) in the second only
        mask_area = explorer.mask.ax.bbox
        rows = slice(int(canvas.get_width_height()[1] - mask_area.y1), int(canvas.get_width_height()[1] - mask_area.y0))
        cols = slice(int(mask_area.x0), int(mask_area.x1))
        np.testing.assert_array_equal(first[rows, cols], last[rows, cols])  # the mask was already in the first


def test_after_a_move_nothing_is_left_stale_for_pyplot_to_redraw(cnn, digits):
    # in interactive mode pyplot redraws stale figures after every comm message: a full draw per slider move
    explorer = explore(copy.deepcopy(cnn), digits.test, figure="agg", grid=GRID)
    for value in (0.3, 0.31):
        explorer.sparsity.value = value
        assert explorer.figure.figure.stale is False


# -- issue 19: what the widgets say -------------------------------------------------------------------------

def test_explorer_names_the_data_it_evaluates(cnn, digits):
    """Item 2: the accuracy panel names the data it was given, not "the test data" whatever it is."""
    given = explore(copy.deepcopy(cnn), digits.val, figure="agg", grid=GRID)
    assert given.curves.ax.get_title() == f"accuracy on the data given ({len(digits.val):,} examples)"
    named = explore(copy.deepcopy(cnn), digits.val, figure="agg", grid=GRID, data_name="the validation set")
    assert named.curves.ax.get_title() == "accuracy on the validation set"
    assert "test" not in named.curves.ax.get_title()


def test_accuracy_axis_holds_one_quantity(cnn, digits):
    """Item 3: at channel granularity the x-axis is the share of channels and the point sits at the slider's
    ratio; a compare of mixed granularities plots every curve against the weight sparsity its readout says."""
    explorer = explore(copy.deepcopy(cnn), digits.test, figure="agg", grid=GRID, granularity="channel",
                       sparsity=0.6)
    assert explorer.curves.ax.get_xlabel() == "output channels pruned (%)"
    accuracy = explorer.last_readout.accuracy  # exact: evaluated now
    assert explorer.curves.current_point() == pytest.approx((0.6, accuracy))
    explorer.granularity.value = "element"
    assert explorer.curves.ax.get_xlabel() == "weights pruned (%)"
    assert list(explorer.curves.lines) == ["magnitude, element, local"]
    mixed = compare(copy.deepcopy(cnn), digits.test, [("magnitude", "element"), ("magnitude", "channel")],
                    sparsity=0.6, figure="agg", grid=GRID)
    assert mixed.x == "sparsity" and "weights pruned" in mixed.curves.ax.get_xlabel()
    mixed.settle()  # the curves, filled in the background in a kernel, now
    for label, session in mixed.sessions.items():
        xs, _ = mixed.curves.measured(label)
        np.testing.assert_allclose(xs, 100 * np.asarray(session.curve("sparsity")[0]))
    same = compare(copy.deepcopy(cnn), digits.test, ["magnitude", "random"], granularity="channel",
                   sparsity=0.6, figure="agg", grid=GRID)
    assert same.x == "ratio" and same.curves.ax.get_xlabel() == "output channels pruned (%)"


def test_nm_masks_are_drawn_in_blocks_and_labelled_by_what_they_hold(cnn, digits):
    """Item 5: N:M masks in blocks of M everywhere; the label says 2:4 only where the mask is 2:4."""
    view = compare(copy.deepcopy(cnn), digits.test, [("magnitude", "element"), ("magnitude", "2:4")],
                   layer="conv3", sparsity=0.5, figure="agg", grid=GRID)
    label = "magnitude, N:4"
    image = view.masks[label]
    assert image.blocks == 4 and view.masks["magnitude, element"].blocks is None
    mask = view.sessions[label].mask("conv3")
    np.testing.assert_array_equal(np.asarray(image.image.get_array()),
                                  np.ma.masked_invalid(plot.kernel_grid(mask, 32, 32, blocks=4)))
    assert "magnitude, 2:4" in image.ax.get_title()
    view.sparsity.value = 0.3
    assert "2:4" not in image.ax.get_title() and "of every 4" in image.ax.get_title()
    view.sparsity.value = 0.75
    assert "magnitude, 1:4" in image.ax.get_title()
    explorer = explore(copy.deepcopy(cnn), digits.test, figure="agg", grid=GRID, layer="conv3", sparsity=0.5)
    explorer.granularity.value = "2:4"
    assert explorer.mask.blocks == 4 and "2:4" in explorer.pruned_text.get_text()
    explorer.granularity.value = "kernel"
    assert explorer.mask.blocks is None


def test_every_widget_figure_fits_a_1280_px_notebook(cnn, digits):
    """Item 6: no widget draws wider than a notebook in a 1280 px window shows (the browser test measures it
    in JupyterLab); four criteria go in rows of two."""
    from pruneviz.widgets.figure import MAX_WIDTH_INCHES

    limit = MAX_WIDTH_INCHES * 80
    explorer = explore(copy.deepcopy(cnn), digits.test, figure="agg", grid=GRID)
    assert explorer.figure.figure.bbox.width <= limit
    view = compare(copy.deepcopy(cnn), digits.test, [("magnitude", g) for g in ("element", "2:4", "kernel",
                                                                                 "channel")],
                   layer="conv3", figure="agg", grid=GRID)
    assert view.figure.figure.bbox.width <= limit
    rows = {round(m.ax.get_position().y0, 3) for m in view.masks.values()}
    assert len(rows) == 2
    with pytest.raises(ValueError, match="1280 px"):
        LiveFigure((14, 3), mode="agg")


def test_readout_says_what_a_move_did_besides_pruning(cnn, digits):
    """Item 7: a global channel threshold that takes a whole layer says so (and names max_layer_sparsity); a
    criterion that only scores channels says it changed the granularity."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the readout says it: no warning on top, move after move
        explorer = explore(copy.deepcopy(cnn), digits.test, figure="agg", grid=GRID, granularity="channel",
                           scope="global", sparsity=0.5)
    guarded = explorer.session.guarded_layers()
    assert guarded, "a global 50 % channel threshold would empty a layer of digits-cnn: the guard keeps one channel"
    assert not explorer.session.emptied_layers()
    for name in guarded:
        assert int(explorer.session.model.get_submodule(name).weight.flatten(1).any(1).sum()) == 1
    note = explorer.readout_text().splitlines()[1]
    assert all(name in note for name in guarded) and "max_layer_sparsity" in note
    assert "max_layer_sparsity" in explorer.readout.value
    explorer.sparsity.value = 0.0
    assert not explorer.session.guarded_layers() and len(explorer.readout_text().splitlines()) == 1
    local = explore(copy.deepcopy(cnn), digits.test, calibration=digits.val, figure="agg", grid=GRID)
    local.criterion.value = "apoz"
    assert local.granularity.value == "channel"
    assert "granularity changed from element to channel" in local.readout_text()
    local.sparsity.value = 0.2  # said once, with the switch: the next move is an ordinary move
    assert "granularity changed" in local.readout_text()
    local.scope.value = "global"
    assert "granularity changed" not in local.readout_text()


def test_a_switch_that_computes_says_so_while_it_runs(cnn, digits):
    """Item 8: a first switch to a criterion computes its scores; the status line says so during the work and
    is empty afterwards. A switch back (cached) computes nothing and says nothing."""
    explorer = explore(copy.deepcopy(cnn), digits.test, calibration=digits.val, figure="agg", grid=GRID)
    shown = []
    explorer.status.widget.observe(lambda change: shown.append(change["new"]), "value")
    explorer.criterion.value = "obd"
    assert shown and "computing the obd scores" in shown[0] and shown[-1] == ""
    assert explorer.status.widget in explorer.children
    shown.clear()
    explorer.criterion.value = "magnitude"  # the obd pruner is freed (issue 22): a switch back builds it again
    explorer.criterion.value = "obd"
    assert any("computing the obd scores" in text for text in shown) and shown[-1] == ""
    refit = compare(copy.deepcopy(cnn), digits.test, ["magnitude", "random"], granularity="channel",
                    calibration=digits.val, figure="agg", grid=(0.0, 0.5), reconstruct=True, sparsity=0.2)
    before = len(refit.status.history)
    refit.sparsity.value = 0.3
    assert len(refit.status.history) == before + 2 and "least squares" in refit.status.history[-1]


def test_curves_draw_measured_points_and_say_where_nothing_was_measured(cnn, digits):
    """Item 9: every measured point is a marker; across a gap wider than GUIDE_GAP the guide is dotted."""
    from pruneviz.plot.curves import GUIDE_GAP

    view = compare(copy.deepcopy(cnn), digits.test, ["magnitude", "random"], figure="agg",
                   grid=(0.0, 0.5, 0.7, 0.9))
    view.settle()  # the curves, filled in the background in a kernel, now
    for label, line in view.curves.lines.items():
        assert line.get_marker() not in (None, "None", "", " ")
        np.testing.assert_allclose(line.get_xdata(), [0.0, 50.0, 70.0, 90.0])
        guide = view.curves.gaps[label]
        styles = [ls for ls in guide.get_linestyles()]
        assert len(guide.get_segments()) == 3
        assert styles[0] != styles[1]  # 0 -> 50 % (a gap over GUIDE_GAP) drawn apart from 50 -> 70 %
    assert 0.5 > GUIDE_GAP > 0.2


def test_cached_evaluator_runs_a_reused_module_each_time(digits):
    """issue 20, item 9: one ReLU instance used twice in a Sequential runs twice in the cached path too."""
    torch.manual_seed(0)
    relu = torch.nn.ReLU()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), relu, torch.nn.Linear(32, 32), relu,
                                torch.nn.Linear(32, 10))
    with torch.no_grad():
        model[3].bias.fill_(-0.3)  # the second ReLU then changes what the classifier sees
    evaluator = CachedEvaluator(model, digits.test)
    assert len(evaluator.stages) == len(model._modules) == 6
    assert evaluator.accuracy() == pruneviz.evaluate(model, digits.test)
    pruner = pruneviz.Pruner(model, "magnitude", "element")
    for ratio in (0.3, {"5": 0.6}):
        pruner.prune(ratio)
        assert evaluator.accuracy() == pruneviz.evaluate(model, digits.test)

    class Reordered(torch.nn.Sequential):  # its own forward: the evaluator cannot assume the order
        def forward(self, x):
            return self[2](self[1](self[0](x)))

    odd = Reordered(torch.nn.Flatten(), torch.nn.Linear(64, 10), torch.nn.Identity())
    assert CachedEvaluator(odd, digits.test).stages is None


def test_compare_names_the_guarded_layers_in_its_readout_instead_of_warning(cnn, digits):
    """The compare widget's readout says which layers the global guard kept a channel in (as the explorer's does),
    move after move, and no warning is printed on top."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        view = compare(copy.deepcopy(cnn), digits.test, ["magnitude", "l2"], granularity="channel",
                       scope="global", sparsity=0.5, figure="agg", grid=GRID)
        view.sparsity.value = 0.7
    guarded = {label: session.guarded_layers() for label, session in view.sessions.items()}
    assert any(guarded.values()), "a global 70 % channel threshold empties a layer of digits-cnn"
    for label, layers in guarded.items():
        said = f"{label}: {', '.join(layers)} kept the most important of its output channels"
        assert (said in view.readout.value) == bool(layers)
    view.sparsity.value = 0.0
    assert "kept the most important" not in view.readout.value

"""Issue 22: the widgets stay live at the lab's scale.

A move answers with a first frame whose work grows with what changed (counted, never timed); the accuracy is
evaluated only for the value the slider rests on, in batches a newer move stops; a display-only change evaluates
nothing; the curve fills in the background. The scheduler is injected (ManualScheduler), so every test runs the
background work step by step, deterministically.
"""
import asyncio
import copy
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import pruneviz  # noqa: E402
from pruneviz.widgets import Explorer, PruningSession, compare, explore, valid_granularities  # noqa: E402
from pruneviz.widgets import session as session_module  # noqa: E402
from pruneviz.widgets.background import REST_SECONDS, ManualScheduler  # noqa: E402
from pruneviz.widgets.evaluator import EVALUATE_BATCH, MIN_BATCH, batch_size_for  # noqa: E402
from pruneviz.widgets.session import coarse_first  # noqa: E402

GRID = (0.0, 0.5, 0.9)


def _explorer(model, data, **kwargs):
    scheduler = ManualScheduler()
    return explore(model, data, figure="agg", grid=GRID, scheduler=scheduler, **kwargs), scheduler


def test_twenty_moves_faster_than_processed_evaluate_only_the_last(cnn, digits):
    explorer, scheduler = _explorer(cnn, digits.test, layer="conv3")
    scheduler.run()  # opening: the accuracy at 0 and the curve, in the background
    session = explorer.session
    evaluated = set(session._accuracy)
    values = [round(0.21 + 0.01 * i, 2) for i in range(20)]  # none on the grid
    for value in values:  # the kernel receives them all before any rest timer can fire
        explorer.sparsity.value = value
        assert explorer.shown_readout.estimated  # read off the curve, marked as such
        assert "≈" in explorer.readout.value and "from the curve" in explorer.readout.value
    assert session.batches_evaluated == sum(len(evaluated) * [len(session.evaluator.chunks)])
    scheduler.run()
    new = set(session._accuracy) - evaluated
    assert new == {(session.key, None, values[-1])}  # only the value the slider rests on
    shown = explorer.shown_readout
    assert not shown.estimated and shown.accuracy == pruneviz.evaluate(cnn, digits.test)
    assert explorer.curves.current_point() == pytest.approx((values[-1], shown.accuracy))
    assert explorer.curves.current.get_alpha() == 1.0
    assert explorer.readout_text().startswith(f"accuracy {100 * shown.accuracy:.1f} % |")


def test_a_display_only_change_evaluates_nothing(cnn, digits):
    other = copy.deepcopy(cnn)
    explorer, scheduler = _explorer(cnn, digits.test, layer="conv3", sparsity=0.3)
    explorer.settle()
    batches = explorer.session.batches_evaluated
    for layer in ("conv1", "fc", "conv4", "conv2"):
        explorer.layer.value = layer
        assert explorer.histogram.ax.get_title().startswith(f"weights of {layer}")
    scheduler.run()
    assert explorer.session.batches_evaluated == batches
    view = compare(other, digits.test, ["magnitude", "random"], figure="agg", grid=GRID,
                   scheduler=scheduler, sparsity=0.3)
    view.settle()
    batches = [s.batches_evaluated for s in view.sessions.values()]
    view.layer.value = "conv1"
    scheduler.run()
    assert [s.batches_evaluated for s in view.sessions.values()] == batches


def test_a_small_move_does_work_that_grows_with_what_changed(cnn, digits):
    explorer, _ = _explorer(cnn, digits.test, layer="conv4", sparsity=0.5)
    pruner = explorer.session.pruner
    weights = sum(m.weight.numel() for m in pruner.layers.values())
    histogram = explorer.histogram
    full = histogram.full_counts
    explorer.sparsity.value = 0.51
    flipped = sum(int(c.numel()) for c in pruner.changed.values())
    assert 0 < flipped < 0.02 * weights  # 1 % of every layer
    assert pruner.last_write_count <= 2 * flipped  # the write touched what flipped (and its neighbours at most)
    assert histogram.full_counts == full  # the histogram moved by the flipped weights, not recounted
    dense = explorer.session.dense_weight("conv4").double().numpy().ravel()
    mask = explorer.session.mask("conv4").numpy().ravel()
    np.testing.assert_array_equal(histogram.kept_counts, np.histogram(dense[mask], histogram.edges)[0])
    assert explorer.session.batches_evaluated == 0  # nothing evaluated in a move
    state = explorer.session.first_readout()
    assert state.nonzero_parameters == pruneviz.metrics.count_parameters(cnn, nonzero=True)
    assert state.sparsity == pytest.approx(pruneviz.metrics.sparsity(cnn))
    assert explorer.session.threshold("conv4") == float(torch.as_tensor(dense[~mask]).abs().max())


def test_the_mask_image_reads_only_the_region_it_draws(digits):
    from pruneviz.plot import MaskImage
    import matplotlib.pyplot as plt

    weight = torch.randn(300, 200)
    _, ax = plt.subplots()
    image = MaskImage(ax, max_out=32, max_in=32)
    image.set_weight(weight)
    mask = weight.abs() > 0.5
    image.set_mask(mask)
    assert image.cropped and np.asarray(image.image.get_array()).shape == (32, 32)
    np.testing.assert_array_equal(np.asarray(image.image.get_array()), mask[:32, :32].numpy().astype(float))
    with pytest.raises(ValueError, match="does not match"):
        image.set_mask(mask[:10])
    plt.close("all")


class SlowCounting(nn.Module):
    """A stage that counts the examples it sees and takes a while per batch (a large model's batch)."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        time.sleep(0.002)
        return x


def _slow_model():
    torch.manual_seed(0)
    counter = SlowCounting()
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), counter, nn.Linear(32, 10))
    return model, counter


def test_a_newer_move_cancels_the_evaluation_between_batches(digits, monkeypatch):
    monkeypatch.setattr(session_module, "SLICE_SECONDS", 0.0)  # one batch per slice
    model, counter = _slow_model()
    session = PruningSession(model, digits.test, grid=GRID, batch_size=32)
    batches = len(session.evaluator.chunks)
    assert batches == -(-len(digits.test) // 32) > 3
    scheduler = ManualScheduler()
    explorer = Explorer(session, figure="agg", scheduler=scheduler, sparsity=0.3)
    explorer.background.cancel()  # start from a move, not from opening's curve
    explorer.sparsity.value = 0.35
    for _ in range(3):  # the rest timer, then two more slices: three batches of 0.35 evaluated
        scheduler.calls.sort(key=lambda c: c.delay)
        call = next(c for c in scheduler.calls if not c.cancelled)
        scheduler.calls.remove(call)
        call.callback()
    state_035 = (session.key, None, 0.35)
    assert len(session._partial[state_035]) == 3 and state_035 not in session._accuracy
    seen = counter.seen
    explorer.sparsity.value = 0.6  # a newer move: 0.35 stops between batches
    assert counter.seen == seen  # the move itself evaluates nothing
    scheduler.run()
    assert state_035 not in session._accuracy  # never finished for a value the user left
    assert len(session._partial[state_035]) == 3  # its batches are kept if the slider comes back
    assert explorer.shown_readout.accuracy == pruneviz.evaluate(model, digits.test)
    explorer.sparsity.value = 0.35  # back: only the missing batches run
    before = session.batches_evaluated
    assert explorer.readout_text().startswith(f"accuracy {100 * pruneviz.evaluate(model, digits.test):.1f}")
    assert session.batches_evaluated - before == batches - 3


def test_opening_shows_the_first_frame_and_fills_the_curve_coarse_first(cnn, digits):
    grid = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
    scheduler = ManualScheduler()
    explorer = explore(cnn, digits.test, figure="agg", grid=grid, scheduler=scheduler, sparsity=0.3)
    session = explorer.session
    assert session.batches_evaluated == 0 and explorer.shown_readout.accuracy is None  # at once, nothing evaluated
    assert "evaluating" in explorer.readout.value
    shown = []
    explorer.status.widget.observe(lambda change: shown.append(change["new"]), "value")
    scheduler.run()
    order = [r for (key, layer, r) in session._accuracy]
    assert order[0] == 0.3  # the value shown first
    assert order[1:] == [r for r in coarse_first(grid) if r != 0.3] == [0.0, 0.99, 0.5, 0.1, 0.7, 0.9]
    assert any("accuracy curve" in text and "of 7 points" in text for text in shown) and shown[-1] == ""
    xs, accs = explorer.curves.measured(session.curve_label())
    np.testing.assert_allclose(xs, [100 * r for r in grid])
    for ratio, accuracy in zip(grid, accs):
        session.set_ratio(ratio)
        assert accuracy == pytest.approx(100 * pruneviz.evaluate(cnn, digits.test))
    # a switch does the same: first frame at once, its curve in the background
    explorer.sparsity.value = 0.4  # not on the grid
    explorer.granularity.value = "channel"
    assert session.knows("magnitude", "channel", "local") and not session.knows("magnitude", "element", "local")
    assert session.curve_progress()[0] == 0
    assert explorer.readout_text().startswith("accuracy")  # settles the value shown
    assert session.curve_progress()[0] == 0  # ...and only it
    assert len(session.curve()[1]) == 7 and session.curve_progress() == (7, 7)  # curve() settles the curve


def test_the_readout_settles_so_a_cell_prints_exact_numbers(cnn, digits):
    """What a notebook cell does: create, move, print; and the session's own readout()."""
    explorer, _ = _explorer(cnn, digits.test, scope="global")
    for value in (0.5, 0.8):
        explorer.sparsity.value = value
        text = explorer.readout_text()
        accuracy = pruneviz.evaluate(cnn, digits.test)
        assert text.startswith(f"accuracy {100 * accuracy:.1f} % | sparsity {pruneviz.sparsity(cnn):.3f}")
        assert explorer.session.readout().accuracy == accuracy


def test_a_model_changed_outside_is_evaluated_again(cnn, digits):
    explorer, _ = _explorer(cnn, digits.test)
    explorer.sparsity.value = 0.5
    before = explorer.last_readout.accuracy
    explorer.session.restore()  # the model back dense, outside the widget's own move
    with torch.no_grad():
        cnn.fc.bias.add_(torch.linspace(-3, 3, 10))
    assert explorer.session.readout().accuracy == pruneviz.evaluate(cnn, digits.test) != before


def test_compare_evaluates_only_where_the_slider_rests(cnn, digits):
    scheduler = ManualScheduler()
    view = compare(copy.deepcopy(cnn), digits.test, ["magnitude", "random"], figure="agg", grid=GRID,
                   scheduler=scheduler, sparsity=0.3)
    scheduler.run()
    evaluated = {label: set(s._accuracy) for label, s in view.sessions.items()}
    for value in [round(0.61 + 0.01 * i, 2) for i in range(20)]:
        view.sparsity.value = value
    assert all(s.estimated for s in view.shown_readouts.values())
    scheduler.run()
    for label, session in view.sessions.items():
        assert set(session._accuracy) - evaluated[label] == {(session.key, None, 0.8)}
        assert view.shown_readouts[label].accuracy == pruneviz.evaluate(session.model, digits.test)
    assert "≈" not in view.readout.value


def test_evaluation_batches_are_bounded_by_the_work_they_hold():
    assert batch_size_for(1_000_000) == EVALUATE_BATCH  # every zoo model: evaluate's own batches
    assert batch_size_for(600_000_000) == MIN_BATCH  # the lab's VGG: 16 images a batch
    assert batch_size_for(60_000_000) == 64
    sizes = [batch_size_for(m) for m in (10**6, 10**7, 10**8, 10**9, 10**10)]
    assert sizes == sorted(sizes, reverse=True)


def test_the_explorer_rests_by_itself_in_an_event_loop(cnn, digits):
    """ipykernel runs an asyncio loop: there the widget needs no settle; the rest timer and the slices run in the
    loop, between which the loop takes newer messages."""

    async def drive():
        explorer = explore(cnn, digits.test, figure="agg", grid=GRID)
        assert isinstance(explorer.background.scheduler, asyncio.AbstractEventLoop)
        explorer.sparsity.value = 0.45
        assert explorer.shown_readout.estimated
        for _ in range(2000):  # generous: the machine may be busy; nothing here is timed
            await asyncio.sleep(REST_SECONDS / 10)
            if not explorer.background.busy:
                break
        return explorer

    explorer = asyncio.run(drive())
    assert not explorer.shown_readout.estimated
    assert explorer.shown_readout.accuracy == pruneviz.evaluate(cnn, digits.test)
    assert explorer.session.curve_progress() == (3, 3)


def test_the_explorer_offers_coupled_channel_groups(resnet, digits):
    """Issue 21: granularity "group" where the model has coupled channels; the mask panel shows the layer's mask,
    the readout says which layers the group spans."""
    assert "group" in valid_granularities(resnet, "magnitude")
    scheduler = ManualScheduler()
    explorer = explore(resnet, digits.test, figure="agg", grid=GRID, scheduler=scheduler, granularity="group",
                       sparsity=0.5)
    assert explorer.granularity.value == "group" and explorer.session.key[1] == "group"
    groups = [g for g in explorer.session.pruner._plan.groups.values() if g.coupled]
    assert groups, "a residual network couples the channels its additions join"
    layer = groups[0].producers[-1]
    explorer.layer.value = layer
    mask = explorer.session.pruner.masks[layer]
    np.testing.assert_array_equal(np.asarray(explorer.mask.image.get_array()),
                                  np.ma.masked_invalid(pruneviz.plot.kernel_grid(mask, 32, 32)))
    note = next(n for n in explorer.notes if "channel group" in n)
    assert all(name in note for name in groups[0].layers())
    assert explorer.readout_text().splitlines()[0].startswith(
        f"accuracy {100 * pruneviz.evaluate(resnet, digits.test):.1f} %")


def test_the_background_leaves_a_model_changed_outside_alone(cnn, digits):
    """A cell that edits the model between two slices: the background writes nothing into it and says why; a
    cell that reads the readout gets the model as it is."""
    from .conftest import same_state, state_of

    explorer, scheduler = _explorer(cnn, digits.test, sparsity=0.3)
    explorer.sparsity.value = 0.35
    with torch.no_grad():
        cnn.fc.bias.add_(1.0)  # what a cell might do while the slider rests
    before = state_of(cnn)
    scheduler.run()
    assert same_state(before, state_of(cnn)) and explorer.session.batches_evaluated == 0
    assert "changed outside" in explorer.status.widget.value and not explorer.errors.errors
    assert explorer.last_readout.accuracy == pruneviz.evaluate(cnn, digits.test)

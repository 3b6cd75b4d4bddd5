"""pruneviz.plot: each function draws on the Axes it is given, and only there; artists hold the data."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import pruneviz  # noqa: E402
from pruneviz import metrics, plot  # noqa: E402


class Schedule:
    def points(self):
        return [0, 100, 200, 300], [0.0, 0.3, 0.5, 0.6]


def _calls(cnn):
    pruner = pruneviz.Pruner(cnn, "magnitude", "2:4")
    pruner.prune(0.5)
    scan = pd.DataFrame({"layer": ["conv1"] * 3 + ["conv2"] * 3, "sparsity": [0.0, 0.5, 0.9] * 2,
                         "accuracy": [0.99, 0.9, 0.5, 0.99, 0.95, 0.8]})
    table = plot.layer_table(cnn, torch.zeros(1, 1, 8, 8))
    return {
        "weight_histogram": lambda ax: plot.weight_histogram(pruner.dense_weight("conv3"), cnn.conv3.weight,
                                                             threshold=0.05, log=True, ax=ax),
        "whole_model_histogram": lambda ax: plot.weight_histogram(cnn, ax=ax),
        "mask_heatmap": lambda ax: plot.mask_heatmap(pruner.masks["conv3"], weight=cnn.conv3.weight,
                                                     show="magnitude", ax=ax),
        "accuracy_curve": lambda ax: plot.accuracy_curve({"a": ([0, 0.5], [0.9, 0.8])}, current=(0.5, 0.8), ax=ax),
        "sensitivity_curves": lambda ax: plot.sensitivity_curves(scan, floor=0.9, ax=ax),
        "schedule_curve": lambda ax: plot.schedule_curve({"agp": Schedule()}, current_step=150, ax=ax),
        "apoz_bars": lambda ax: plot.apoz_bars({"a": torch.rand(8), "b": torch.rand(4)},
                                               pruned={"a": torch.rand(8) > 0.5}, ax=ax),
        "gamma_distribution": lambda ax: plot.gamma_distribution(cnn, threshold=0.2, ax=ax),
        "layer_bars": lambda ax: plot.layer_bars(table, measure="macs", log=True, ax=ax),
        "sparsity_bars": lambda ax: plot.sparsity_bars(pruner.layer_sparsity(), ax=ax),
    }


def _content(ax):
    return (len(ax.lines), len(ax.patches), len(ax.images), len(ax.texts), len(ax.collections),
            ax.get_legend() is not None, ax.get_xlim(), ax.get_ylim(), ax.get_title(), ax.get_xlabel())


def test_each_plot_draws_on_its_axes_only(cnn):
    for name, call in _calls(cnn).items():
        fig, (target, other) = plt.subplots(1, 2)
        bystander = plt.figure()  # the current figure: a plot given an Axes must not draw here
        before_rc = dict(plt.rcParams)
        before_other = _content(other)
        figures = plt.get_fignums()
        returned = call(target)
        assert returned is target, name
        assert _content(target) != _content(fig.add_subplot(3, 3, 9)), f"{name} drew nothing"
        assert _content(other) == before_other, f"{name} touched another Axes"
        assert dict(plt.rcParams) == before_rc, f"{name} changed rcParams"
        assert plt.get_fignums() == figures and plt.gcf() is bystander, f"{name} changed the current figure"
        assert not bystander.axes, name
        assert target.get_xlabel() and target.get_ylabel() != "" or name == "mask_heatmap", name
        fig.canvas.draw()
        plt.close("all")


def test_ax_none_draws_on_current_axes(cnn):
    fig, ax = plt.subplots()
    assert plot.weight_histogram(cnn.conv1.weight) is ax
    plt.close(fig)


def test_histogram_counts_are_the_kept_weights(cnn):
    pruner = pruneviz.Pruner(cnn, "magnitude", "element")
    pruner.prune(0.7)
    fig, ax = plt.subplots()
    plot.weight_histogram(pruner.dense_weight("conv2"), cnn.conv2.weight, threshold=0.01, ax=ax)
    hist = plot.artists(ax)
    dense = pruner.dense_weight("conv2").double().numpy().ravel()
    kept = cnn.conv2.weight.detach().double().numpy().ravel()
    kept = kept[kept != 0]
    np.testing.assert_array_equal(hist.before.get_data().values, np.histogram(dense, hist.edges)[0])
    np.testing.assert_array_equal(hist.kept_counts, np.histogram(kept, hist.edges)[0])
    assert hist.kept_counts.sum() == int(pruner.masks["conv2"].sum())
    assert [line.get_xdata()[0] for line in hist.thresholds] == [-0.01, 0.01]
    plt.close(fig)


def test_kernel_grid_layout():
    w = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    grid = plot.kernel_grid(w)
    assert grid.shape == (2 * 3 - 1, 3 * 3 - 1)
    for o in range(2):
        for c in range(3):
            np.testing.assert_array_equal(grid[o * 3:o * 3 + 2, c * 3:c * 3 + 2], w[o, c].numpy())
    assert np.isnan(grid[2]).all() and np.isnan(grid[:, 2]).all()
    np.testing.assert_array_equal(plot.kernel_grid(w[:, :, 0, 0]), w[:, :, 0, 0].numpy())
    with pytest.raises(ValueError, match="2 or more dims"):
        plot.kernel_grid(torch.zeros(3))


def test_mask_image_shows_nm_pattern(mlp):
    pruner = pruneviz.Pruner(mlp, "magnitude", "2:4")
    pruner.prune(0.5)
    fig, ax = plt.subplots()
    plot.mask_heatmap(pruner.masks["fc2"], max_out=None, max_in=None, ax=ax)
    image = np.asarray(ax.images[0].get_array())
    np.testing.assert_array_equal(image, pruner.masks["fc2"].numpy().astype(float))
    assert (image.reshape(image.shape[0], -1, 4).sum(-1) == 2).all()  # two kept of every four inputs
    plot.artists(ax).set_mask(torch.ones(128, 256, dtype=torch.bool))
    assert np.asarray(ax.images[0].get_array()).all()
    with pytest.raises(ValueError, match="does not match"):
        plot.artists(ax).set_mask(torch.ones(3, 3, dtype=torch.bool))
    plt.close(fig)


def test_curves_hold_their_data():
    fig, ax = plt.subplots()
    frame = pd.DataFrame({"criterion": ["a", "a", "b", "b"], "sparsity": [0.5, 0.0, 0.0, 0.5],
                          "accuracy": [0.8, 0.9, 0.9, 0.4]})
    plot.accuracy_curve(frame, hue="criterion", current=(0.5, 0.4), ax=ax)
    curves = plot.artists(ax)
    np.testing.assert_allclose(curves.lines["a"].get_ydata(), [90.0, 80.0])
    assert curves.current_point() == pytest.approx((0.5, 0.4))
    curves.set_current(None)
    assert curves.current_point() is None
    with pytest.raises(ValueError, match="no column"):
        plot.sensitivity_curves(frame, ax=ax)
    with pytest.raises(TypeError, match="points"):
        plot.schedule_curve({"x": object()}, ax=ax)
    ax2 = plot.schedule_curve(Schedule(), ax=plt.figure().gca())
    np.testing.assert_array_equal(plot.artists(ax2)["Schedule"].get_xdata(), [0, 100, 200, 300])
    plt.close("all")


def test_layer_table_counts(cnn):
    pruner = pruneviz.Pruner(cnn, "magnitude", "channel")
    pruner.prune(0.5)
    example = torch.zeros(1, 1, 8, 8)
    table = plot.layer_table(cnn, example).set_index("layer")
    assert table["macs"].to_dict() == metrics.layer_macs(cnn, example)
    assert table.loc["conv2", "nonzero_parameters"] == int(torch.count_nonzero(cnn.conv2.weight))
    assert table["sparsity"].to_dict() == pytest.approx(metrics.layer_sparsity(cnn))
    with pytest.raises(ValueError, match="valid choices"):
        plot.layer_bars(table.reset_index(), measure="latency")


def test_set_theme_is_the_only_global_change():
    before = dict(plt.rcParams)
    with plot.theme():
        assert plt.rcParams["axes.grid"]
    assert dict(plt.rcParams) == before


def test_overlapping_series_differ_by_line_style_and_marker_too():
    """Curves that lie on top of each other (notebook 08's schedules at 50-90 %): four series, four line styles,
    four markers, each later one smaller so it does not hide the one beneath; drawn, the lines keep them."""
    from pruneviz.plot.theme import series_style

    styles = [series_style(i, overlapping=True) for i in range(4)]
    for key in ("color", "marker", "linestyle"):
        assert len({s[key] for s in styles}) == 4, key
    assert [s["markersize"] for s in styles] == sorted((s["markersize"] for s in styles), reverse=True)
    assert series_style(2) == {k: series_style(2, overlapping=True)[k] for k in ("color", "marker")} | {
        "linestyle": "-"}  # the default is unchanged
    fig, ax = plt.subplots()
    lines = [ax.plot([0, 1], [0, 0], **style)[0] for style in styles]
    assert len({line.get_linestyle() for line in lines}) == 4
    plt.close(fig)


def test_threshold_lines_end_at_the_tallest_bar_below_the_legend(cnn):
    """The threshold lines stop where the bars stop: the headroom above is the legend's (issue 11)."""
    for log in (False, True):
        fig, ax = plt.subplots(figsize=(4, 3))
        plot.weight_histogram(cnn.conv3.weight, threshold=0.01, log=log, ax=ax)
        hist = plot.artists(ax)
        fig.canvas.draw()
        top = hist.dense_counts.max()
        for line in hist.thresholds:
            y_end = ax.transAxes.transform((0, line.get_ydata()[1]))[1]
            assert y_end == pytest.approx(ax.transData.transform((0, top))[1], abs=0.5)
        legend = ax.get_legend().get_window_extent()
        assert y_end <= legend.y0 + 1, f"log={log}: the line reaches into the legend"
        plt.close(fig)


def test_kernel_grid_blocks_lay_nm_blocks_side_by_side(cnn):
    w = torch.arange(2 * 8 * 1 * 2, dtype=torch.float32).reshape(2, 8, 1, 2)
    grid = plot.kernel_grid(w, blocks=4)
    # row = (output, kernel position), columns = input channels 0-3 | 4-7, a NaN row between outputs
    assert grid.shape == (2 * 3 - 1, 2 * 5 - 1)
    np.testing.assert_array_equal(grid[1, :4], w[0, :4, 0, 1].numpy())
    np.testing.assert_array_equal(grid[3, 5:], w[1, 4:, 0, 0].numpy())
    assert np.isnan(grid[2]).all() and np.isnan(grid[:, 4]).all()
    np.testing.assert_array_equal(plot.kernel_grid(torch.arange(16.).reshape(2, 8), blocks=4)[:, 5:],
                                  torch.arange(16.).reshape(2, 8)[:, 4:].numpy())
    with pytest.raises(ValueError, match="blocks must be"):
        plot.kernel_grid(w, blocks=0)
    mask = pruneviz.tensor_mask(cnn.conv3.weight.detach(), 0.5, granularity="2:4")
    fig, ax = plt.subplots()
    plot.mask_heatmap(mask, blocks=4, max_out=4, max_in=32, ax=ax)
    image = np.ma.filled(np.asarray(ax.images[0].get_array(), dtype=float), np.nan)
    rows = image[~np.isnan(image).all(axis=1)]
    blocks = rows[:, ~np.isnan(rows).all(axis=0)].reshape(-1, 4)
    assert (blocks.sum(axis=1) == 2).all()  # two kept in every drawn block of four
    assert "blocks of 4" in ax.get_xlabel()
    plt.close(fig)


def test_network_graph_synapses_and_neurons():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    pruner = pruneviz.Pruner(net, "magnitude", "channel")
    pruner.prune(0.5)  # 3 of the 6 hidden neurons go; the outputs are left out
    fig, ax = plt.subplots()
    plot.network_graph([net[0].weight, net[2].weight], ax=ax)
    drawn = plot.artists(ax)
    # kept lines: 3 neurons x 4 inputs in, 3 x 3 out; the 3 removed neurons' outgoing lines count as pruned
    assert len(drawn["kept"].get_segments()) == 3 * 4 + 3 * 3
    assert len(drawn["pruned"].get_segments()) == 3 * 4 + 3 * 3
    assert len(drawn["removed"].get_offsets()) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="takes 5 inputs"):
        plot.network_graph([torch.ones(6, 4), torch.ones(3, 5)])


def test_histogram_bins_align_to_the_threshold_so_the_cut_is_empty(cnn):
    weight = cnn.conv4.weight.detach()
    pruned = pruneviz.prune_tensor(weight, 0.7)
    threshold = weight.abs().flatten().kthvalue(round(0.7 * weight.numel())).values.item()
    fig, ax = plt.subplots()
    plot.weight_histogram(weight, pruned, threshold=threshold, ax=ax)
    hist = plot.artists(ax)
    widths = np.diff(hist.edges)
    np.testing.assert_allclose(widths, widths[0])  # still equal bins
    assert 40 <= len(widths) <= 180
    assert np.isclose(hist.edges, threshold).any() and np.isclose(hist.edges, -threshold).any()
    inside = (hist.edges[:-1] >= -threshold - 1e-12) & (hist.edges[1:] <= threshold + 1e-12)
    assert inside.sum() >= 1 and hist.kept_counts[inside].sum() == 0  # the pruned band: empty kept bins
    assert hist.dense_counts[inside].sum() > 0
    assert hist.kept_counts.sum() == int((pruned != 0).sum())
    plt.close(fig)
    # no threshold, or one too narrow for aligned bins: the plain bins
    np.testing.assert_allclose(plot.weights.threshold_edges(1.0, 60), np.linspace(-1, 1, 61))
    np.testing.assert_allclose(plot.weights.threshold_edges(1.0, 60, 1e-6), np.linspace(-1, 1, 61))


def test_gamma_layers_differ_by_line_style_not_by_colour_alone(cnn):
    gammas = {f"bn{i}": torch.linspace(0.1, 0.3, 16) + 0.01 * i for i in range(1, 5)}
    fig, ax = plt.subplots()
    handles = plot.artists(plot.gamma_distribution(gammas, ax=ax))
    steps = [handles[name] for name in gammas]
    assert not any(step.get_fill() for step in steps)  # outlines: one layer never hides another
    assert len({str(step.get_linestyle()) for step in steps}) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(gammas)
    plt.close(fig)


def test_apoz_pruned_bars_are_hatched_outlines_with_a_legend_entry():
    apoz = {"a": torch.tensor([0.2, 1.0, 0.5, 0.9]), "b": torch.tensor([0.3, 1.0])}
    pruned = {"a": torch.tensor([False, True, False, True]), "b": torch.tensor([False, True])}
    fig, ax = plt.subplots()
    bars = plot.artists(plot.apoz_bars(apoz, pruned=pruned, ax=ax))
    for name in apoz:
        for bar, cut in zip(bars[name], pruned[name].tolist()):
            assert bool(bar.get_hatch()) == cut, name
            if cut:  # drawn in the layer's colour on white, visible at 100 % too
                assert bar.get_facecolor()[:3] == (1.0, 1.0, 1.0)
                assert bar.get_edgecolor()[:3] != (1.0, 1.0, 1.0)
    assert bars["a"][1].get_height() == 100
    legend = ax.get_legend()
    entries = dict(zip([t.get_text() for t in legend.get_texts()], legend.get_patches()))
    assert entries["pruned (hatched)"].get_hatch()
    plt.close(fig)


def test_layer_table_counts_a_compacted_model_once(cnn):
    """Item 1: the MACs of a compacted model are counted on its own shapes, once: the bars sum to what
    pruneviz.macs says of it; the legend says compacted; small layers stay visible (log axis)."""
    example = torch.zeros(1, 1, 8, 8)
    compacted = pruneviz.compact(cnn, pruneviz.Pruner(cnn, "magnitude", "channel").prune(0.5).masks)
    dense = pruneviz.zoo.load("digits-cnn", device="cpu")
    table = plot.layer_table(compacted, example, dense=dense)
    assert table["sparse_macs"].sum() == pruneviz.macs(compacted, example)
    assert table["macs"].sum() == pruneviz.macs(dense, example)
    assert table.attrs["compacted"]
    ax = plot.layer_bars(table, measure="macs", ax=plt.figure().gca())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dense", "pruned (compacted)"]
    assert ax.get_yscale() == "log"  # conv1 and fc are 100x smaller than conv4
    masked = plot.layer_table(cnn, example)
    assert not masked.attrs["compacted"]
    ax = plot.layer_bars(masked, ax=plt.figure().gca(), log=False)
    assert ax.get_legend().get_texts()[1].get_text() == "pruned (nonzero)" and ax.get_yscale() == "linear"
    plt.close("all")


def test_static_curves_name_their_quantity():
    """Item 3 for static plots: the x-axis names what the ratio counts."""
    ax = plot.accuracy_curve({"a": ([0, 0.5], [0.9, 0.8])}, pruned="channel", ax=plt.figure().gca())
    assert ax.get_xlabel() == "output channels pruned (%)"
    assert plot.accuracy_curve({"a": ([0, 0.5], [0.9, 0.8])}, ax=plt.figure().gca()).get_xlabel() == \
        "weights pruned (%)"
    assert plot.accuracy_curve({"a": ([0, 1], [1, 0])}, pruned="neurons", ax=plt.figure().gca()).get_xlabel() == \
        "neurons pruned (%)"
    scan = pd.DataFrame({"layer": ["conv1"] * 2, "sparsity": [0.0, 0.5], "accuracy": [0.9, 0.8]})
    scan.attrs["granularity"] = "channel"
    assert "output channels" in plot.sensitivity_curves(scan, ax=plt.figure().gca()).get_xlabel()
    plt.close("all")


def test_static_figures_have_what_the_notebooks_need(cnn):
    """Item 10: a log count axis for piled-up gammas, a zoomed sensitivity panel, the lecture's APoZ maps, and a
    weight histogram whose bins cover where the weights are."""
    gammas = {"bn": torch.cat([torch.full((73,), 1e-3), torch.linspace(0.2, 1.0, 27)])}
    ax = plot.gamma_distribution(gammas, log=True, ax=plt.figure().gca())
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] < 1  # a bin of one channel shows beside 73
    # a zoomed panel of the sensitivity scan: the <= 1-point drops fill it
    scan = pd.DataFrame({"layer": ["conv1"] * 3 + ["conv2"] * 3, "sparsity": [0.0, 0.5, 0.9] * 2,
                         "accuracy": [0.99, 0.985, 0.5, 0.99, 0.98, 0.8]})
    fig, (main, side) = plt.subplots(1, 2)
    plot.sensitivity_curves(scan, zoom=0.02, zoom_ax=side, ax=main)
    assert plot.artists(main)["zoom"] is side
    assert side.get_ylim() == pytest.approx((97.0, 99.0 + 0.3))
    alone = plot.sensitivity_curves(scan, zoom=0.02, ax=plt.figure().gca())
    assert plot.artists(alone)["zoom"].figure is alone.figure
    with pytest.raises(ValueError, match="fraction"):
        plot.sensitivity_curves(scan, zoom=2, ax=plt.figure().gca())
    # the lecture's APoZ example: 2 images x 3 maps of 4x4, every zero written, APoZ 11/32, 12/32, 14/32
    ax = plot.apoz_maps(ax=plt.figure().gca())
    maps = plot.artists(ax)
    from pruneviz.coursework.criteria import lecture_activations

    assert len(maps["zeros"]) == int((lecture_activations() == 0).sum()) == 11 + 12 + 14
    np.testing.assert_allclose(maps["apoz"], [11 / 32, 12 / 32, 14 / 32])
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "channel 0\nAPoZ 11/32 = 34 %"
    with pytest.raises(ValueError, match="N, C, H, W"):
        plot.apoz_maps(torch.zeros(3, 4), ax=plt.figure().gca())
    # span: the bins cover the 99 % quantile, the rest counted in the end bins and said
    weight = torch.cat([torch.randn(2000, generator=torch.Generator().manual_seed(0)) * 0.05, torch.tensor([3.0])])
    ax = plot.weight_histogram(weight, span=0.99, ax=plt.figure().gca())
    hist = plot.artists(ax)
    assert ax.get_xlim()[1] < 0.5 and hist.dense_counts.sum() == weight.numel() and hist.beyond >= 1
    assert any("beyond" in t.get_text() for t in ax.get_legend().get_texts())
    full = plot.artists(plot.weight_histogram(weight, ax=plt.figure().gca()))
    assert full.beyond == 0 and full.dense_counts.sum() == weight.numel()
    plt.close("all")

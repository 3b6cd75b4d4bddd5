"""plot.group_spans shows a coupled group as one unit: one row, a marker on every layer it spans."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import pruneviz  # noqa: E402
from benchmarks.coupled_models import ARCHITECTURES, randomized  # noqa: E402
from pruneviz import plot  # noqa: E402


def test_rows_are_groups_and_markers_are_their_layers():
    torch.manual_seed(0)
    model = randomized(ARCHITECTURES["resnet18"](0.125))
    pruner = pruneviz.Pruner(model, "magnitude", "group").prune(0.5)
    fig, ax = plt.subplots(figsize=(8, 5))
    assert plot.group_spans(pruner, ax=ax) is ax
    groups = list(pruner._plan.groups.values())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "conv1 4/8"  # the stem's group: 4 of its 8 channels kept
    markers = sum(len(c.get_offsets()) for c in ax.collections)
    assert markers == sum(len(g.producers) + len(g.consumers) for g in groups)
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "writes its channels"
    plt.close(fig)


def test_a_model_shows_its_coupled_groups_and_a_channel_pruner_is_refused():
    torch.manual_seed(0)
    model = randomized(ARCHITECTURES["mobilenet_v2"](0.25))
    ax = plot.group_spans(model, coupled_only=True)
    assert len(ax.get_yticklabels()) == sum(1 for g in pruneviz.coupling.coupled_groups(model)
                                            if g.coupled and not g.blockers)
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="a model or a Pruner at granularity 'group', got Pruner at 'channel'"):
        plot.group_spans(pruneviz.Pruner(model, "magnitude", "channel",
                                         layers=pruneviz.channel_prunable_layers(model)))

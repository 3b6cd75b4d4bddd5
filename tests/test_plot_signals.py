"""plot.signals: a few MNIST-1D signals per class on the Axes it is given, and a clear error for anything else."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from pruneviz import plot  # noqa: E402


@pytest.fixture
def signals_data():
    """30 signals of 3 classes, class c a sine of frequency c + 1, in the [N, 1, L] shape of data.mnist1d()."""
    t = torch.linspace(0, 2 * torch.pi, 40)
    y = torch.arange(30) % 3
    x = torch.stack([torch.sin((int(c) + 1) * t) * (1 + 0.1 * i) for i, c in enumerate(y)]).unsqueeze(1)
    return TensorDataset(x, y)


def test_draws_per_class_signals_one_row_per_class_on_the_given_axes(signals_data):
    fig, (other, ax) = plt.subplots(1, 2)
    returned = plot.signals(signals_data, per_class=2, ax=ax)
    assert returned is ax
    assert len(ax.lines) == 3 * 2 and not other.lines  # draws only where it is told
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
    x, y = signals_data.tensors
    first_of_class_2 = x[y == 2][0, 0].numpy()
    drawn = ax.lines[4].get_ydata()  # class 2's first curve: shifted, same shape
    np.testing.assert_allclose(drawn - drawn.mean(), first_of_class_2 - first_of_class_2.mean(), atol=1e-6)
    rows = [np.mean(line.get_ydata()) for line in ax.lines[::2]]
    assert rows == sorted(rows, reverse=True)  # class 0 on top
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    plt.close(fig)


def test_accepts_flat_signals_and_an_x_y_pair(signals_data):
    x, y = signals_data.tensors
    ax = plot.signals((x[:, 0], y), per_class=1)
    assert len(ax.lines) == 3
    plt.close(ax.figure)


def test_a_class_with_fewer_signals_draws_what_it_has(signals_data):
    x, y = signals_data.tensors
    ax = plot.signals((x[:12], y[:12]), per_class=5)  # 4 signals of each class
    assert len(ax.lines) == 12
    plt.close(ax.figure)


@pytest.mark.parametrize("per_class", [0, -1, 2.5, True, "3"])
def test_bad_per_class_says_what_was_given(signals_data, per_class):
    with pytest.raises(ValueError, match=f"per_class must be a positive int.*{per_class!r}"):
        plot.signals(signals_data, per_class=per_class)


def test_images_are_refused_with_their_shape():
    images = TensorDataset(torch.zeros(4, 1, 8, 8), torch.arange(4))
    with pytest.raises(ValueError, match=r"\(4, 1, 8, 8\)"):
        plot.signals(images)


def test_the_real_mnist1d_signals_draw():
    import pruneviz

    _, _, test = pruneviz.data.mnist1d()
    ax = plot.signals(test, per_class=3)
    assert len(ax.lines) == 30
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(c) for c in range(10)]
    plt.close(ax.figure)

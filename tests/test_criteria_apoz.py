"""APoZ: average percentage of zeros after the ReLU, per channel or neuron."""
from collections import OrderedDict

import pytest
import torch
from torch import nn

import pruneviz
from pruneviz.criteria import apoz


def lecture_activations() -> torch.Tensor:
    """2 images x 3 channels of 4x4, with exactly 11, 12 and 14 zeros of 32 per channel, positives elsewhere."""
    gen = torch.Generator().manual_seed(0)
    acts = torch.rand(3, 32, generator=gen) + 0.5
    for channel, zeros in enumerate((11, 12, 14)):
        acts[channel, torch.randperm(32, generator=gen)[:zeros]] = 0.0
    return acts.reshape(3, 2, 4, 4).transpose(0, 1).contiguous()  # [N=2, C=3, 4, 4]


def identity_conv_model(channels: int = 3) -> nn.Sequential:
    """conv (identity 1x1, no bias) -> ReLU -> classifier: the ReLU's output equals the input when it is >= 0."""
    conv = nn.Conv2d(channels, channels, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels).reshape(channels, channels, 1, 1))
    return nn.Sequential(OrderedDict([("conv", conv), ("relu", nn.ReLU()), ("flatten", nn.Flatten()),
                                      ("fc", nn.Linear(channels * 16, 2))]))


def test_lecture_example():
    x = lecture_activations()
    assert [(x[:, c] == 0).sum().item() for c in range(3)] == [11, 12, 14]
    model, data = identity_conv_model(), (x, torch.tensor([0, 1]))
    values = apoz(model, data)["conv"]
    assert torch.equal(values, torch.tensor([11 / 32, 12 / 32, 14 / 32]))
    pruner = pruneviz.Pruner(model, "apoz", "channel", data=data).prune(1 / 3)
    assert pruner.group_masks()["conv"].tolist() == [True, True, False]  # channel 2 goes first
    assert pruner.prune(2 / 3).group_masks()["conv"].tolist() == [True, False, False]


def test_per_neuron_on_the_mlp_matches_a_manual_count(mlp, digits):
    x = digits.test.tensors[0][:100]
    values = apoz(mlp, (x, torch.zeros(100, dtype=torch.long)))
    with torch.no_grad():
        hidden1 = torch.relu(mlp.fc1(x.flatten(1)))
        hidden2 = torch.relu(mlp.fc2(hidden1))
    assert torch.allclose(values["fc1"], (hidden1 == 0).float().mean(0))
    assert torch.allclose(values["fc2"], (hidden2 == 0).float().mean(0))
    assert set(values) == {"fc1", "fc2"}  # fc3 has no ReLU after it


def test_counts_after_batchnorm_on_the_cnn_over_batches(cnn, digits):
    x, y = digits.test.tensors
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:200], y[:200]), batch_size=64)
    values = apoz(cnn, loader)
    with torch.no_grad():
        out = cnn.relu2(cnn.bn2(cnn.conv2(cnn.relu1(cnn.bn1(cnn.conv1(x[:200]))))))
    assert torch.allclose(values["conv2"], (out == 0).float().mean((0, 2, 3)))
    assert apoz(cnn, loader, limit=10)["conv2"].shape == (32,)


def test_dead_channel_scores_zero_and_goes_first():
    model = identity_conv_model()
    with torch.no_grad():
        model.conv.weight[1] = 0.0  # channel 1 is always zero after the ReLU
    x = lecture_activations()
    data = (x, torch.tensor([0, 1]))
    assert apoz(model, data)["conv"][1] == 1.0
    pruner = pruneviz.Pruner(model, "apoz", "channel", data=data)
    assert pruner.scores["conv"][1] == 0.0
    assert pruner.prune(1 / 3).group_masks()["conv"].tolist() == [True, False, True]


def test_layer_with_one_channel():
    model = identity_conv_model(channels=1)
    x = torch.tensor([[-1.0, 2.0, 0.0, 3.0]]).repeat(4, 1).reshape(1, 1, 4, 4)
    assert torch.equal(apoz(model, (x, torch.tensor([0])))["conv"], torch.tensor([0.5]))
    pruner = pruneviz.Pruner(model, "apoz", "channel", data=(x, torch.tensor([0])))
    assert not pruner.prune(1.0).group_masks()["conv"].any()


class FunctionalReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 64, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def test_functional_relu_counts_the_same_zeros(digits):
    torch.manual_seed(0)
    model = FunctionalReLU()
    x = digits.test.tensors[0][:50]
    with torch.no_grad():
        expected = (torch.relu(model.conv(x)) == 0).float().mean((0, 2, 3))
    assert torch.allclose(apoz(model, (x, torch.zeros(50, dtype=torch.long)))["conv"], expected)


def test_only_channel_granularity_and_layers_with_a_relu(cnn, digits):
    with pytest.raises(ValueError, match="valid granularities for it: 'channel'"):
        pruneviz.Pruner(cnn, "apoz", "element", data=digits.test)
    resnet = pruneviz.zoo.load("digits-resnet", device="cpu")
    pruner = pruneviz.Pruner(resnet, "apoz", "channel", data=digits.test, limit=32)
    assert "ReLU" in pruner.skipped["layer1.0.conv2"]  # its ReLU comes after the skip connection's add
    assert "layer1.0.conv1" in pruner.layers
    with pytest.raises(ValueError, match="no ReLU"):
        apoz(resnet, digits.test, layers=["layer1.0.conv2"])

"""Small models a practitioner might bring, beyond the zoo: built in the tests, seeded, fast on a CPU.

Every model reads [N, 1, 4, 4] inputs and gives 4 classes, so one calibration set serves them all.
"""
import torch
from torch import nn

KINDS = ("mlp", "conv", "conv_bn", "residual", "conv1d", "depthwise", "concat", "attention")


class ResidualNet(nn.Module):
    """stem conv-BN-ReLU, one basic block (conv-BN-ReLU-conv-BN + skip), ReLU, pool, classifier."""

    def __init__(self, bias: bool):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1, bias=bias)
        self.stem_bn = nn.BatchNorm2d(8)
        self.conv_a = nn.Conv2d(8, 8, 3, padding=1, bias=bias)
        self.bn_a = nn.BatchNorm2d(8)
        self.conv_b = nn.Conv2d(8, 8, 3, padding=1, bias=bias)
        self.bn_b = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        h = torch.relu(self.stem_bn(self.stem(x)))
        y = self.bn_b(self.conv_b(torch.relu(self.bn_a(self.conv_a(h)))))
        return self.fc(self.pool(torch.relu(h + y)).flatten(1))


class Conv1dNet(nn.Module):
    """The 16 pixels as a sequence: Conv1d-BN-ReLU, a dilated Conv1d, flatten (16 positions) and a classifier."""

    def __init__(self, bias: bool):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 3, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm1d(8)
        self.conv2 = nn.Conv1d(8, 4, 3, padding=2, dilation=2, bias=bias)
        self.fc = nn.Linear(4 * 16, 4)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x.flatten(1).unsqueeze(1))))
        return self.fc(torch.relu(self.conv2(h)).flatten(1))


class ConcatNet(nn.Module):
    """Two branches of a stem, concatenated along the channels (torch.cat), then a conv reads all of them."""

    def __init__(self, bias: bool):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=bias)
        self.left = nn.Conv2d(4, 4, 3, padding=1, bias=bias)
        self.right = nn.Conv2d(4, 4, 1, bias=bias)
        self.merge = nn.Conv2d(8, 8, 3, padding=1, bias=bias)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.cat([torch.relu(self.left(h)), torch.relu(self.right(h))], 1)
        return self.fc(torch.relu(self.merge(h)).mean([2, 3]))


class AttentionNet(nn.Module):
    """The 4 rows of the image as 4 tokens: a projection, one transformer encoder block (multi-head attention,
    LayerNorm, feed-forward), a mean over tokens and a classifier."""

    def __init__(self, bias: bool):
        super().__init__()
        self.embed = nn.Linear(4, 8, bias=bias)
        self.block = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, bias=bias)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.block(self.embed(x.flatten(2).squeeze(1).unflatten(1, (4, 4)))).mean(1))


def build(kind: str, *, bias: bool = True, dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    """One of KINDS, with or without biases, in float32 or float64; BatchNorm statistics moved off their
    defaults so a BatchNorm is not the identity."""
    torch.manual_seed(seed)
    if kind == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12, bias=bias), nn.ReLU(), nn.Linear(12, 8, bias=bias),
                              nn.ReLU(), nn.Linear(8, 4))
    elif kind == "conv":
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=bias), nn.ReLU(),
                              nn.Conv2d(8, 8, 3, padding=1, bias=bias), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                              nn.Flatten(), nn.Linear(8, 4))
    elif kind == "conv_bn":
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Conv2d(8, 8, 3, padding=1, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32, 4))
    elif kind == "residual":
        model = ResidualNet(bias)
    elif kind == "conv1d":
        model = Conv1dNet(bias)
    elif kind == "depthwise":
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=bias), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.Conv2d(8, 8, 1, bias=bias), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1,
                                                                                   groups=2, bias=bias),
                              nn.ReLU(), nn.Flatten(), nn.Linear(32, 4))
    elif kind == "concat":
        model = ConcatNet(bias)
    elif kind == "attention":
        model = AttentionNet(bias)
    else:
        raise ValueError(kind)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return model.to(dtype).eval()


def calibration(n: int = 48, seed: int = 1, dtype: torch.dtype = torch.float32):
    """(x, y): n inputs [n, 1, 4, 4] and class indices in 0..3."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 4, 4, generator=generator, dtype=dtype), torch.randint(0, 4, (n,), generator=generator)

"""Small models a practitioner might bring, beyond the zoo: built in the tests, seeded, fast on a CPU.

Every model reads [N, 1, 4, 4] inputs and gives 4 classes, so one calibration set serves them all.
"""
import torch
from torch import nn

KINDS = ("mlp", "conv", "conv_bn", "residual")


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
    else:
        raise ValueError(kind)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
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

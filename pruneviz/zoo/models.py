"""The zoo's architectures: small enough to train in seconds on a CPU, shaped like the lecture's nets."""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def digits_mlp() -> nn.Sequential:
    """64-256-128-10 multilayer perceptron: every layer is a Linear, so rows are neurons."""
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(64, 256)), ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(256, 128)), ("relu2", nn.ReLU()),
        ("fc3", nn.Linear(128, 10)),
    ]))


def _conv_bn_relu(i: int, cin: int, cout: int) -> list[tuple[str, nn.Module]]:
    return [(f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1, bias=False)), (f"bn{i}", nn.BatchNorm2d(cout)),
            (f"relu{i}", nn.ReLU())]


def digits_cnn() -> nn.Sequential:
    """VGG-style Conv-BN-ReLU stack: conv16, conv32, pool, conv64 x2, pool, linear 256->10 (63k parameters)."""
    return nn.Sequential(OrderedDict([
        *_conv_bn_relu(1, 1, 16), *_conv_bn_relu(2, 16, 32), ("pool1", nn.MaxPool2d(2)),
        *_conv_bn_relu(3, 32, 64), *_conv_bn_relu(4, 64, 64), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(256, 10)),
    ]))


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv-BN, added to the input (through a 1x1 conv-BN when shapes change)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + identity)


class DigitsResNet(nn.Module):
    """A small ResNet: stem, three stages of two basic blocks (16, 32, 64 channels), average pool, linear.

    The second block of each stage keeps its shape, so it can be replaced by identity (depth pruning).
    """

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64), num_classes: int = 10):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Sequential(nn.Conv2d(1, w1, 3, padding=1, bias=False), nn.BatchNorm2d(w1), nn.ReLU())
        self.layer1 = nn.Sequential(BasicBlock(w1, w1), BasicBlock(w1, w1))
        self.layer2 = nn.Sequential(BasicBlock(w1, w2, stride=2), BasicBlock(w2, w2))
        self.layer3 = nn.Sequential(BasicBlock(w2, w3, stride=2), BasicBlock(w3, w3))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.flatten(self.pool(x)))


ARCHITECTURES = {"digits-mlp": digits_mlp, "digits-cnn": digits_cnn, "digits-resnet": DigitsResNet}

"""The zoo's architectures: small enough to train in seconds on a CPU, shaped like the lecture's nets; and two
CIFAR-10 architectures at the lecture lab's scale (9-11M parameters), shipped without weights."""
from __future__ import annotations

from collections import OrderedDict, defaultdict

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


_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}


class BasicBlock(nn.Module):
    """ResNet's basic block: two size-3 conv-BN, added to the input (through a size-1 conv-BN when shapes
    change); ``dims`` 2 for images (3x3 kernels), 1 for signals."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dims: int = 2):
        super().__init__()
        conv, norm = _CONV[dims], _NORM[dims]
        self.conv1 = conv(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(cout)
        self.relu = nn.ReLU()
        self.conv2 = conv(cout, cout, 3, padding=1, bias=False)
        self.bn2 = norm(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(conv(cin, cout, 1, stride=stride, bias=False), norm(cout))

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


# -- MNIST-1D: signals [N, 1, 40] -----------------------------------------------------------------------

def mnist1d_mlp() -> nn.Sequential:
    """40-100-100-10 perceptron, the MLP of the MNIST-1D paper's Table 1."""
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(40, 100)), ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(100, 100)), ("relu2", nn.ReLU()),
        ("fc3", nn.Linear(100, 10)),
    ]))


def mnist1d_cnn(channels: int = 24) -> nn.Sequential:
    """The paper's CNN (three strided convs, 40 -> 19 -> 10 -> 5 positions, then a linear layer) with a
    BatchNorm after each conv, and 24 channels instead of its 25 so channel ratios of 1/2, 1/4, 1/8 are exact
    (32 channels reached 97.9 % on the standard test set, above the paper's band; see recipe.py)."""
    c = channels
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv1d(1, c, 5, stride=2, padding=1, bias=False)), ("bn1", nn.BatchNorm1d(c)),
        ("relu1", nn.ReLU()),
        ("conv2", nn.Conv1d(c, c, 3, stride=2, padding=1, bias=False)), ("bn2", nn.BatchNorm1d(c)),
        ("relu2", nn.ReLU()),
        ("conv3", nn.Conv1d(c, c, 3, stride=2, padding=1, bias=False)), ("bn3", nn.BatchNorm1d(c)),
        ("relu3", nn.ReLU()),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(5 * c, 10)),
    ]))


class MNIST1DResNet(nn.Module):
    """A residual Conv1d net: a strided stem (40 -> 20 positions), three stages of two basic blocks (16, 32, 64
    channels; 20, 10, 5 positions), average pool, linear.

    The second block of each stage keeps its shape, so it can be replaced by identity (depth pruning).
    """

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64), num_classes: int = 10):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Sequential(nn.Conv1d(1, w1, 5, stride=2, padding=2, bias=False), nn.BatchNorm1d(w1),
                                  nn.ReLU())
        self.layer1 = nn.Sequential(BasicBlock(w1, w1, dims=1), BasicBlock(w1, w1, dims=1))
        self.layer2 = nn.Sequential(BasicBlock(w1, w2, stride=2, dims=1), BasicBlock(w2, w2, dims=1))
        self.layer3 = nn.Sequential(BasicBlock(w2, w3, stride=2, dims=1), BasicBlock(w3, w3, dims=1))
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.flatten(self.pool(x)))


# -- CIFAR-10: images [N, 3, 32, 32], the lecture lab's scale; shipped untrained --------------------------

LAB_VGG_CONFIG = (64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class LabVGG(nn.Module):
    """The VGG of MIT 6.5940's Lab 1 (pruning): eight conv3x3-BN-ReLU (64, 128, pool, 256, 256, pool, 512, 512,
    pool, 512, 512, pool), the mean over the remaining 2x2 positions, then Linear 512 -> 10 (9.23M parameters).

    Layers are named as the lab names them (``backbone.conv0`` ... ``backbone.conv7``, ``bn0``, ``relu0``,
    ``pool0``, ``classifier``), so a state dict trained with the lab's notebook loads into it as it is.
    """

    def __init__(self, config: tuple = LAB_VGG_CONFIG, num_classes: int = 10):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        counts: defaultdict[str, int] = defaultdict(int)

        def add(kind: str, layer: nn.Module) -> None:
            layers.append((f"{kind}{counts[kind]}", layer))
            counts[kind] += 1

        cin = 3
        for width in config:
            if width == "M":
                add("pool", nn.MaxPool2d(2))
            else:
                add("conv", nn.Conv2d(cin, width, 3, padding=1, bias=False))
                add("bn", nn.BatchNorm2d(width))
                add("relu", nn.ReLU())
                cin = width
        self.backbone = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.backbone(x)  # [N, 3, 32, 32] -> [N, 512, 2, 2]
        return self.classifier(x.mean([2, 3]))


class CifarResNet18(nn.Module):
    """ResNet-18 in the form commonly trained on CIFAR-10: a 3x3 stem at full resolution, no max-pool, four
    stages of two basic blocks (64, 128, 256, 512 channels; 32, 16, 8, 4 positions), average pool, linear
    (11.17M parameters). ImageNet's 7x7 stride-2 stem and max-pool would leave 32x32 images 1x1 at the end."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        stages, cin = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(cin, width, stride), BasicBlock(width, width)))
            cin = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(self.flatten(self.pool(x)))


ARCHITECTURES = {"digits-mlp": digits_mlp, "digits-cnn": digits_cnn, "digits-resnet": DigitsResNet,
                 "mnist1d-mlp": mnist1d_mlp, "mnist1d-cnn": mnist1d_cnn, "mnist1d-resnet": MNIST1DResNet}
# architectures the kit has no weights for (their data cannot be fetched where the kit is built): build() them,
# train them on pruneviz.data.cifar10(download=True)
UNTRAINED = {"cifar10-vgg": LabVGG, "cifar10-resnet18": CifarResNet18}
# the task each model is trained and evaluated on: a name of pruneviz.data's splits
TASKS = {name: name.split("-")[0] for name in (*ARCHITECTURES, *UNTRAINED)}

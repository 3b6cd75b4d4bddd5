"""Hand-written copies of the coupled structures of torchvision's models (torchvision cannot be imported here).

Each block is written as torchvision writes it (same layers, same order, same ops in ``forward``), so the kit's
fx analysis sees what it would see on the real model. ``width`` scales the channel counts: the tests use small
widths, ``benchmarks/bench_coupled.py`` the torchvision sizes (width=1), on 3x32x32 inputs.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _c(channels: int, width: float) -> int:
    return max(2, int(round(channels * width / 2)) * 2)


class BasicBlock(nn.Module):
    """ResNet-18/34's block: conv3x3-BN-ReLU-conv3x3-BN, plus the input (through a 1x1 conv-BN when it changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 reduce, 3x3, 1x1 expand (x4), each with a BN; the add as in BasicBlock."""

    expansion = 4

    def __init__(self, cin: int, mid: int, stride: int = 1):
        super().__init__()
        cout = mid * self.expansion
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ResNet: stem conv7x7-BN-ReLU-maxpool, four stages, average pool, classifier."""

    def __init__(self, block, layers=(2, 2, 2, 2), width: float = 1.0, num_classes: int = 10):
        super().__init__()
        base = _c(64, width)
        self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = base, []
        for i, n in enumerate(layers):
            mid = _c(64 * 2 ** i, width)
            blocks = []
            for j in range(n):
                blocks.append(block(cin, mid, 2 if j == 0 and i > 0 else 1))
                cin = mid * getattr(block, "expansion", 1)
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SqueezeExcitation(nn.Module):
    """torchvision's SE gate: average pool, 1x1 conv down, activation, 1x1 conv up, sigmoid, times the input."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act=nn.ReLU6) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act(inplace=True)) if act is not None else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 / EfficientNet's block: 1x1 expand, depthwise kxk, optional SE gate, 1x1 project (no
    activation); the input added when the shape allows."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, k: int = 3, se: bool = False,
                 act=nn.ReLU6):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [_conv_bn(cin, hidden, 1, act=act)]
        layers.append(_conv_bn(hidden, hidden, k, stride, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcitation(hidden, max(1, cin // 4)))
        layers.append(_conv_bn(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.use_res else self.block(x)


class _Mobile(nn.Module):
    def __init__(self, stem: int, config, last: int, width: float, se: bool, act, num_classes: int):
        super().__init__()
        cin = _c(stem, width)
        layers = [_conv_bn(3, cin, 3, 2, act=act)]
        for expand, cout, n, stride, k in config:
            for i in range(n):
                layers.append(InvertedResidual(cin, _c(cout, width), stride if i == 0 else 1, expand, k, se, act))
                cin = _c(cout, width)
        layers.append(_conv_bn(cin, _c(last, width), 1, act=act))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(_c(last, width), num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


MOBILENET_V2 = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 32, 3, 2, 3), (6, 64, 4, 2, 3), (6, 96, 3, 1, 3),
                (6, 160, 3, 2, 3), (6, 320, 1, 1, 3))
EFFICIENTNET_B0 = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
                   (6, 192, 4, 2, 5), (6, 320, 1, 1, 3))


def mobilenet_v2(width: float = 1.0, config=MOBILENET_V2, num_classes: int = 10) -> nn.Module:
    return _Mobile(32, config, 1280, width, False, nn.ReLU6, num_classes)


def efficientnet_b0(width: float = 1.0, config=EFFICIENTNET_B0, num_classes: int = 10) -> nn.Module:
    """EfficientNet-B0's MBConv stack (SiLU, squeeze-excitation in every block; no stochastic depth)."""
    return _Mobile(32, config, 1280, width, True, nn.SiLU, num_classes)


class DenseLayer(nn.Module):
    """DenseNet's layer: BN-ReLU-conv1x1 (4 x growth)-BN-ReLU-conv3x3 (growth) on the concatenation so far."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, n: int, cin: int, growth: int):
        super().__init__()
        for i in range(n):
            self[f"denselayer{i + 1}"] = DenseLayer(cin + i * growth, growth)

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet(nn.Module):
    """DenseNet-121's layout: stem, four dense blocks with BN-ReLU-conv1x1-avgpool transitions, final BN."""

    def __init__(self, blocks=(6, 12, 24, 16), growth: int = 32, width: float = 1.0, num_classes: int = 10):
        super().__init__()
        growth, c = _c(growth, width), _c(64, width)
        layers = [nn.Conv2d(3, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                  nn.MaxPool2d(3, 2, 1)]
        for i, n in enumerate(blocks):
            layers.append(DenseBlock(n, c, growth))
            c += n * growth
            if i != len(blocks) - 1:
                layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, c // 2, 1, bias=False),
                           nn.AvgPool2d(2, 2)]
                c //= 2
        layers.append(nn.BatchNorm2d(c))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(F.relu(self.features(x)), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class LayerNorm2d(nn.LayerNorm):
    """torchvision's LayerNorm over the channels of an [N, C, H, W] tensor (permute, normalize, permute back)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block: depthwise 7x7, permute to channels-last, LayerNorm, Linear (x4), GELU, Linear,
    layer scale, permute back, plus the input."""

    def __init__(self, dim: int, layer_scale: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + self.layer_scale * y


class ConvNeXt(nn.Module):
    """ConvNeXt-tiny's layout: 4x4 patchify stem with LayerNorm, stages of blocks, LayerNorm + 2x2 downsampling."""

    def __init__(self, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), width: float = 1.0, num_classes: int = 10):
        super().__init__()
        dims = [_c(d, width) for d in dims]
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            layers.append(nn.Sequential(*[ConvNeXtBlock(dim) for _ in range(depth)]))
            if i + 1 < len(dims):
                layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6), nn.Conv2d(dim, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.classifier = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        x = self.features(x).mean([2, 3])
        return self.classifier(self.norm(x))


class VGG(nn.Module):
    """vgg11_bn's features (conv3x3-BN-ReLU, max pools), average pool to 1x1 here (32x32 inputs), classifier."""

    def __init__(self, cfg=(64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"), width: float = 1.0,
                 num_classes: int = 10):
        super().__init__()
        layers, cin = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, _c(v, width), 3, padding=1), nn.BatchNorm2d(_c(v, width)),
                           nn.ReLU(inplace=True)]
                cin = _c(v, width)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class RegNetBlock(nn.Module):
    """RegNetY's ResBottleneckBlock: 1x1, grouped 3x3 (groups of ``group_width`` channels), squeeze-excitation,
    1x1 without activation, plus the input (through a 1x1 conv-BN when it changes), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, group_width: int, se_ratio: float = 0.25):
        super().__init__()
        self.a = _conv_bn(cin, cout, 1, act=nn.ReLU)
        self.b = _conv_bn(cout, cout, 3, stride, groups=cout // group_width, act=nn.ReLU)
        self.se = SqueezeExcitation(cout, max(1, int(round(se_ratio * cin))))
        self.se.activation = nn.ReLU()
        self.c = _conv_bn(cout, cout, 1, act=None)
        self.proj = _conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else None
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):
        identity = x if self.proj is None else self.proj(x)
        return self.activation(identity + self.c(self.se(self.b(self.a(x)))))


class RegNet(nn.Module):
    """RegNetY-400MF's layout: stem conv3x3 (32), four stages (widths 48, 104, 208, 440; depths 1, 3, 6, 6),
    group width 8, SE ratio 0.25, average pool, classifier."""

    def __init__(self, widths=(48, 104, 208, 440), depths=(1, 3, 6, 6), group_width: int = 8, width: float = 1.0,
                 num_classes: int = 10):
        super().__init__()
        widths = [max(group_width, int(round(w * width / group_width)) * group_width) for w in widths]
        cin = _c(32, width)
        self.stem = _conv_bn(3, cin, 3, 2, act=nn.ReLU)
        blocks = []
        for w, depth in zip(widths, depths):
            for i in range(depth):
                blocks.append(RegNetBlock(cin, w, 2 if i == 0 else 1, group_width))
                cin = w
        self.trunk_output = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.trunk_output(self.stem(x))), 1))


class EncoderLayer(nn.Module):
    """A transformer encoder layer as people write it: nn.MultiheadAttention, residual adds, LayerNorms, MLP."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.linear2 = nn.Linear(hidden, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.norm1(x + self.attn(x, x, x, need_weights=False)[0])
        return self.norm2(x + self.linear2(self.act(self.linear1(x))))


class TinyViT(nn.Module):
    """Patches of 8x8 as tokens (a conv of stride 8, as torchvision's ViT embeds them; no class token, no
    position embedding), encoder layers, mean over tokens, classifier."""

    def __init__(self, dim: int = 64, heads: int = 4, depth: int = 2, num_classes: int = 10):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 8, 8)
        self.layers = nn.Sequential(*[EncoderLayer(dim, heads, 2 * dim) for _ in range(depth)])
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.layers(tokens).mean(1))


ARCHITECTURES = {
    "resnet18": lambda width=1.0: ResNet(BasicBlock, (2, 2, 2, 2), width),
    "resnet50": lambda width=1.0: ResNet(Bottleneck, (3, 4, 6, 3), width),
    "mobilenet_v2": lambda width=1.0: mobilenet_v2(width),
    "efficientnet_b0": lambda width=1.0: efficientnet_b0(width),
    "regnet_y_400mf": lambda width=1.0: RegNet(width=width),
    "densenet121": lambda width=1.0: DenseNet(width=width),
    "convnext_tiny": lambda width=1.0: ConvNeXt(width=width),
    "vgg11_bn": lambda width=1.0: VGG(width=width),
}


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded weights, BatchNorm statistics moved off their defaults (so a BatchNorm is not the identity)."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
        if isinstance(module, ConvNeXtBlock):
            with torch.no_grad():
                module.layer_scale.uniform_(0.5, 1.5)
    return model.eval()

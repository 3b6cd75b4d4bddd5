"""The promise "compact equals masked" over many small models built here: for every channel mask, compact either
returns a model computing what the masked model computes, or refuses with a ValueError naming the layer and why,
leaving the model bit for bit as it was. Channel granularity leaves out the layers whose pruned channels would not
be gone (they would reach the next layer as a constant) and says why in ``Pruner.skipped``."""
from dataclasses import dataclass, field

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import pruneviz
from pruneviz.criteria.apoz import apoz
from pruneviz.graph import prunable_layers
from pruneviz.surgery import channel_groups, channel_prunable_layers, compact

from .conftest import same_state, state_of
from .test_surgery import zero_channels  # what a channel Pruner writes for given masks

X = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))


class Seq(nn.Sequential):
    """nn.Sequential whose children have names, so messages and expectations read like a real model."""

    def __init__(self, **layers):
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)


def conv(c_in, c_out, bias=True, **kw):
    return nn.Conv2d(c_in, c_out, kw.pop("k", 3), padding=kw.pop("padding", 1), bias=bias, **kw)


def head(channels, positions=64):
    return dict(flat=nn.Flatten(), fc=nn.Linear(channels * positions, 10))


class Twice(nn.Module):
    """conv2 is called twice: its second call reads its own output."""

    def __init__(self, bias=True):
        super().__init__()
        self.conv1, self.conv2 = conv(1, 6, bias), conv(6, 6, bias)
        self.fc = nn.Linear(6 * 64, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(torch.relu(self.conv2(x))))
        return self.fc(x.flatten(1))


class SharedNorm(nn.Module):
    """One BatchNorm module applied after two different convs."""

    def __init__(self, bias=True):
        super().__init__()
        self.conv1, self.conv2, self.bn = conv(1, 6, bias), conv(6, 6, bias), nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv1(x)))
        return self.fc(torch.relu(self.bn(self.conv2(x))).mean([2, 3]))


class Residual(nn.Module):
    """A stem and one basic block; ``post_norm`` puts a BatchNorm after the add (pre-activation style)."""

    def __init__(self, bias=True, post_norm=False):
        super().__init__()
        self.stem, self.bn0 = conv(1, 8, bias), nn.BatchNorm2d(8)
        self.conv1, self.bn1 = conv(8, 6, bias), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = conv(6, 8, bias), nn.BatchNorm2d(8)
        self.post = nn.BatchNorm2d(8) if post_norm else nn.Identity()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.bn0(self.stem(x)))
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.relu(self.post(x + y)).mean([2, 3]))


class FunctionalSigmoid(nn.Module):
    def __init__(self, bias=True):
        super().__init__()
        self.conv1, self.conv2, self.fc = conv(1, 6, bias), conv(6, 4, bias), nn.Linear(4 * 64, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv2(torch.sigmoid(self.conv1(x)))).flatten(1))


class Concat(nn.Module):
    """Two branches of a stem joined by torch.cat along the channels, then a conv that reads all of them."""

    def __init__(self, bias=True):
        super().__init__()
        self.stem, self.left, self.right = conv(1, 6, bias), conv(6, 4, bias), conv(6, 4, bias, k=1, padding=0)
        self.merge, self.fc = conv(8, 6, bias), nn.Linear(6, 10)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.cat([torch.relu(self.left(h)), torch.relu(self.right(h))], 1)
        return self.fc(torch.relu(self.merge(h)).mean([2, 3]))


class Conv1dChain(nn.Module):
    """The 64 pixels as a sequence: Conv1d-BN-ReLU, a dilated Conv1d, flatten and a classifier."""

    def __init__(self, bias=True):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv1d(1, 6, 3, padding=1, bias=bias), nn.BatchNorm1d(6)
        self.conv2 = nn.Conv1d(6, 4, 3, padding=2, dilation=2, bias=bias)
        self.fc = nn.Linear(4 * 64, 10)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x.flatten(1).unsqueeze(1))))
        return self.fc(torch.relu(self.conv2(h)).flatten(1))


class Transformer(nn.Module):
    """The 8 rows as tokens: a projection, a transformer encoder block, a mean over tokens, a classifier. torch.fx
    keeps the block as one op, so the Linear layers inside it are never seen by the trace."""

    def __init__(self, bias=True):
        super().__init__()
        self.embed = nn.Linear(8, 8, bias=bias)
        self.block = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, bias=bias)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.block(self.embed(x.squeeze(1))).mean(1))


@dataclass
class Case:
    """A model, the layers compact can remove channels of on their own, and the layers a channel Pruner must
    leave out because a pruned channel would leak (with a word of the reason)."""

    build: object
    alone: list[str]
    leaks: dict[str, str] = field(default_factory=dict)
    coupled: list[list[str]] = field(default_factory=list)  # groups that may go together, one mask for all


def activation_case(act, leaks=False):
    return Case(lambda bias: Seq(conv1=conv(1, 6, bias), act=act, conv2=conv(6, 4, bias), relu=nn.ReLU(), **head(4)),
                ["conv2"] if leaks else ["conv1", "conv2"], {"conv1": "maps a zeroed channel to"} if leaks else {})


CASES = {
    "conv-bn-relu": Case(lambda bias: Seq(conv1=conv(1, 6, bias), bn1=nn.BatchNorm2d(6), relu1=nn.ReLU(),
                                          conv2=conv(6, 4, bias), bn2=nn.BatchNorm2d(4), relu2=nn.ReLU(), **head(4)),
                         ["conv1", "conv2"]),
    "conv-relu-bn": Case(lambda bias: Seq(conv1=conv(1, 6, bias), relu1=nn.ReLU(), bn1=nn.BatchNorm2d(6),
                                          conv2=conv(6, 4, bias), relu2=nn.ReLU(), bn2=nn.BatchNorm2d(4), **head(4)),
                         ["conv1", "conv2"]),
    "conv-maxpool-bn": Case(lambda bias: Seq(conv1=conv(1, 6, bias), pool=nn.MaxPool2d(2), bn1=nn.BatchNorm2d(6),
                                             relu1=nn.ReLU(), conv2=conv(6, 4, bias), relu2=nn.ReLU(), **head(4, 16)),
                            ["conv1", "conv2"]),
    "bn-affine-false": Case(lambda bias: Seq(conv1=conv(1, 6, bias), bn1=nn.BatchNorm2d(6, affine=False),
                                             relu1=nn.ReLU(), conv2=conv(6, 4, bias), bn2=nn.BatchNorm2d(4),
                                             relu2=nn.ReLU(), **head(4)),
                            ["conv2"], {"conv1": "affine=False"}),
    "two-bns": Case(lambda bias: Seq(conv1=conv(1, 6, bias), bn1=nn.BatchNorm2d(6), relu1=nn.ReLU(),
                                     bn2=nn.BatchNorm2d(6), conv2=conv(6, 4, bias), relu2=nn.ReLU(), **head(4)),
                    ["conv2"], {"conv1": "2 BatchNorms"}),
    "sigmoid": activation_case(nn.Sigmoid(), leaks=True),
    "hardsigmoid": activation_case(nn.Hardsigmoid(), leaks=True),
    "softplus": activation_case(nn.Softplus(), leaks=True),
    "tanh": activation_case(nn.Tanh()),
    "gelu": activation_case(nn.GELU()),
    "silu": activation_case(nn.SiLU()),
    "leaky-relu": activation_case(nn.LeakyReLU(0.1)),
    "functional-sigmoid": Case(FunctionalSigmoid, ["conv2"], {"conv1": "sigmoid"}),
    "linear-chain": Case(lambda bias: Seq(flat=nn.Flatten(), fc1=nn.Linear(64, 32, bias), relu1=nn.ReLU(),
                                          fc2=nn.Linear(32, 16, bias), bn=nn.BatchNorm1d(16), relu2=nn.ReLU(),
                                          fc3=nn.Linear(16, 10)),
                         ["fc1", "fc2"]),
    "linear-relu-bn": Case(lambda bias: Seq(flat=nn.Flatten(), fc1=nn.Linear(64, 32, bias), relu=nn.ReLU(),
                                            bn=nn.BatchNorm1d(32), fc2=nn.Linear(32, 10)),
                           ["fc1"]),
    "conv-flatten-linear": Case(lambda bias: Seq(conv1=conv(1, 4, bias), bn1=nn.BatchNorm2d(4), relu1=nn.ReLU(),
                                                 flat=nn.Flatten(), fc1=nn.Linear(256, 16, bias), relu2=nn.ReLU(),
                                                 fc2=nn.Linear(16, 10)),
                                ["conv1", "fc1"]),
    "flatten-then-bn": Case(lambda bias: Seq(conv1=conv(1, 4, bias), relu1=nn.ReLU(), flat=nn.Flatten(),
                                             bn=nn.BatchNorm1d(256), fc=nn.Linear(256, 10)),
                            [], {"conv1": "features, not the layer's 4 channels"}),
    "groupnorm": Case(lambda bias: Seq(conv1=conv(1, 6, bias), gn=nn.GroupNorm(2, 6), relu1=nn.ReLU(),
                                       conv2=conv(6, 4, bias), relu2=nn.ReLU(), **head(4)),
                      ["conv2"], {"conv1": "normalizes a zeroed channel with the others"}),
    "layernorm-mlp": Case(lambda bias: Seq(flat=nn.Flatten(), fc1=nn.Linear(64, 32, bias), ln=nn.LayerNorm(32),
                                           relu=nn.ReLU(), fc2=nn.Linear(32, 10)),
                          [], {"fc1": "'ln' (LayerNorm)"}),
    "called-twice": Case(Twice, [], coupled=[["conv1", "conv2"]]),
    "shared-norm": Case(SharedNorm, [], coupled=[["conv1", "conv2"]]),
    "residual": Case(Residual, ["conv1"], coupled=[["stem", "conv2"]]),
    "residual-norm-after-add": Case(lambda bias: Residual(bias, post_norm=True), ["conv1"]),
    "grouped": Case(lambda bias: Seq(conv1=conv(1, 8, bias), bn1=nn.BatchNorm2d(8), relu1=nn.ReLU(),
                                     conv2=conv(8, 8, bias, groups=2), relu2=nn.ReLU(), conv3=conv(8, 6, bias, k=1,
                                                                                                 padding=0),
                                     relu3=nn.ReLU(), **head(6)),
                    ["conv3"]),
    "depthwise": Case(lambda bias: Seq(conv1=conv(1, 8, bias), bn1=nn.BatchNorm2d(8), relu1=nn.ReLU(),
                                       dw=conv(8, 8, bias, groups=8), bn2=nn.BatchNorm2d(8), relu2=nn.ReLU(),
                                       pw=conv(8, 6, bias, k=1, padding=0), relu3=nn.ReLU(), **head(6)),
                      ["pw"]),
    "conv-transpose": Case(lambda bias: Seq(conv1=conv(1, 8, bias, stride=2), relu1=nn.ReLU(),
                                            up=nn.ConvTranspose2d(8, 4, 2, stride=2, bias=bias), relu2=nn.ReLU(),
                                            conv2=conv(4, 6, bias), relu3=nn.ReLU(), **head(6)),
                           ["conv2"]),
    "concat": Case(Concat, ["stem", "merge"]),
    "conv1d": Case(Conv1dChain, ["conv1", "conv2"]),
    "transformer": Case(Transformer, []),
}
MODELS = [(name, bias) for name in CASES for bias in (True, False)]


def build(name: str, bias: bool, seed: int = 0) -> nn.Module:
    """The case's model with random BatchNorm statistics and affine parameters, in eval mode: a zeroed channel
    that leaks then leaks a visible constant (fresh statistics, mean 0 and var 1, would hide it)."""
    torch.manual_seed(seed)
    model = CASES[name].build(bias)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=gen) * 2 - 1)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                if module.affine:
                    module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                    module.bias.copy_(torch.rand(n, generator=gen) - 0.5)
    return model.eval()


def outputs(model: nn.Module, x: torch.Tensor = X) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def check_compact(model: nn.Module, masks: dict[str, torch.Tensor], must_accept: bool) -> bool:
    """compact equals masked, or a ValueError that names a pruned layer and changes nothing. True if accepted."""
    before = state_of(model)
    pruned = {n for n, m in masks.items() if not bool(m.all())}
    try:
        small = compact(model, masks)
    except ValueError as err:
        assert not must_accept, f"refused a mask it must accept: {err}"
        assert same_state(before, state_of(model)), "a refused compact changed the model"
        assert any(f"'{n}'" in str(err) for n in pruned), f"the error names no pruned layer: {err}"
        return False
    assert same_state(before, state_of(model)), "compact changed the input model"
    torch.testing.assert_close(outputs(small), outputs(model), rtol=1e-4, atol=1e-5)
    for name, mask in masks.items():
        kept = int(mask.flatten(1).any(1).sum()) if mask.dim() > 1 else int(mask.sum())
        assert small.get_submodule(name).weight.shape[0] == kept
    if pruned:
        assert pruneviz.count_parameters(small) < pruneviz.count_parameters(model)
    return True


@st.composite
def channel_masks(draw, model: nn.Module, layers: list[str]) -> dict[str, torch.Tensor]:
    """A random per-channel mask for a random subset of ``layers``, each keeping at least one channel."""
    keeps = {}
    for name in layers:
        if not draw(st.booleans()):
            continue
        width = model.get_submodule(name).weight.shape[0]
        bits = draw(st.lists(st.booleans(), min_size=width, max_size=width))
        bits[draw(st.integers(0, width - 1))] = True
        keeps[name] = torch.tensor(bits)
    return keeps


@pytest.mark.parametrize("name, bias", MODELS)
def test_the_layers_compact_can_remove_alone(name, bias):
    model = build(name, bias)
    assert channel_prunable_layers(model) == CASES[name].alone


@pytest.mark.parametrize("name, bias", MODELS)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hand_masks_compact_equals_masked_or_refuse(name, bias, data):
    """Any masks on any layers: accepted exactly when every pruned layer can go alone."""
    model = build(name, bias, seed=data.draw(st.integers(0, 3)))
    hidden = list(prunable_layers(model))[:-1]  # the last layer's channels are the classes
    keeps = data.draw(channel_masks(model, hidden))
    zero_channels(model, keeps)
    expected = acceptable(CASES[name], keeps)
    assert check_compact(model, keeps, must_accept=expected) == expected


def acceptable(case: Case, keeps: dict[str, torch.Tensor]) -> bool:
    """Every pruned layer can go alone, or is in a coupled group whose layers all carry one mask."""
    rest = {n for n, k in keeps.items() if not bool(k.all())} - set(case.alone)
    for group in case.coupled:
        masks = [keeps.get(n) for n in group]
        if all(m is not None and torch.equal(m, masks[0]) for m in masks):
            rest -= set(group)
    return not rest


@pytest.mark.parametrize("name, bias", MODELS)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ratio=st.floats(0.0, 0.9), criterion=st.sampled_from(["magnitude", "random"]))
def test_pruner_masks_compact_equals_masked_or_refuse(name, bias, ratio, criterion):
    """A channel Pruner over its default scope; on the layers that can go alone, compact always accepts."""
    model = build(name, bias)
    case = CASES[name]
    before = state_of(model)
    try:
        pruner = pruneviz.Pruner(model, criterion, "channel")
    except ValueError as err:  # one BatchNorm shared by two layers, or no layer left in scope: refused
        assert same_state(before, state_of(model))
        assert "tied" in str(err) or all(word in str(err) for word in case.leaks.values()), err
    else:
        for layer, word in case.leaks.items():
            assert layer not in pruner.layers and word in pruner.skipped[layer]
            assert "would not be gone" in pruner.skipped[layer]
        masks = pruner.prune(ratio).masks
        check_compact(model, masks, must_accept=set(pruner.layers) <= set(case.alone) and keeps_some(masks))
        pruner.restore()
    if case.alone:
        masks = pruneviz.Pruner(model, criterion, "channel", layers=case.alone).prune(ratio).masks
        assert check_compact(model, masks, must_accept=keeps_some(masks)) == keeps_some(masks)


def keeps_some(masks: dict[str, torch.Tensor]) -> bool:
    """Every layer keeps a channel (a ratio that rounds to all of a layer's channels is refused, rightly)."""
    return all(bool(m.any()) for m in masks.values())


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case.coupled])
@pytest.mark.parametrize("bias", [True, False])
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 99))
def test_coupled_layers_go_together_with_one_mask(name, bias, seed):
    model = build(name, bias)
    for layers in CASES[name].coupled:
        assert any(set(g.producers) == set(layers) for g in channel_groups(model))
        width = model.get_submodule(layers[0]).weight.shape[0]
        keep = torch.rand(width, generator=torch.Generator().manual_seed(seed)) > 0.5
        keep[seed % width] = True
        keeps = {n: keep for n in layers}
        zero_channels(model, keeps)
        assert check_compact(model, keeps, must_accept=True)


@pytest.mark.parametrize("name, layers, words", [
    ("called-twice", ["conv1"], "'conv2', called more than once, ties them to 'conv2'"),
    ("shared-norm", ["conv1"], "'bn', called more than once, ties them to 'conv2'"),
    ("residual", ["stem"], "skip connection"),
    ("residual-norm-after-add", ["stem", "conv2"], "BatchNorm 'post'"),
    ("grouped", ["conv1"], "grouped conv 'conv2' (groups=2)"),
    ("grouped", ["conv2"], "'conv2' is a grouped conv (groups=2)"),
    ("depthwise", ["conv1"], "grouped conv 'dw' (groups=8)"),
    ("conv-transpose", ["conv1"], "ConvTranspose2d"),
    ("sigmoid", ["conv1"], "'act' (Sigmoid) maps a zeroed channel to 0.5, not 0"),
    ("bn-affine-false", ["conv1"], "BatchNorm 'bn1' has no gamma and beta (affine=False)"),
    ("concat", ["left"], "'cat'"),
    ("transformer", ["embed"], "'block' (TransformerEncoderLayer) reads them"),
    ("transformer", ["block.linear1"], "it runs inside 'block' (TransformerEncoderLayer), which torch.fx traces as one "
                                       "op, so compact cannot see what reads its channels"),
    ("transformer", ["block.self_attn.out_proj"], "it runs inside 'block' (TransformerEncoderLayer)"),
])
def test_refusals_say_why(name, layers, words):
    model = build(name, True)
    width = model.get_submodule(layers[0]).weight.shape[0]
    keeps = {n: torch.arange(width) % 2 == 0 for n in layers}
    zero_channels(model, keeps)
    before = state_of(model)
    with pytest.raises(ValueError, match=f"'{layers[0]}'") as err:
        compact(model, keeps)
    assert words in str(err.value)
    assert same_state(before, state_of(model))


@pytest.mark.parametrize("name", ["sigmoid", "bn-affine-false", "two-bns", "flatten-then-bn"])
def test_a_leak_is_real_so_refusing_is_needed(name):
    """The refused cases are not over-cautious: the masked model still feeds the next layer a constant from the
    pruned channel, so slicing it away would change the outputs."""
    model = build(name, True)
    keeps = {"conv1": torch.arange(model.conv1.out_channels) % 2 == 0}
    zero_channels(model, keeps)
    masked = outputs(model)
    with torch.no_grad():  # what compact did before: the next layer loses the pruned channel's inputs
        nxt = [m for n, m in prunable_layers(model).items() if n != "conv1"][0]
        columns = nxt.weight.shape[1] // len(keeps["conv1"])
        nxt.weight[:, ~keeps["conv1"].repeat_interleave(columns)] = 0
    assert not torch.allclose(outputs(model), masked, atol=1e-4)


@pytest.mark.parametrize("name, norm", [("conv-relu-bn", "bn1"), ("conv-maxpool-bn", "bn1"),
                                        ("linear-relu-bn", "bn"), ("conv-bn-relu", "bn1")])
def test_pruner_zeros_the_batchnorm_wherever_it_sits_before_the_next_layer(name, norm):
    model = build(name, True)
    layer = list(prunable_layers(model))[0]
    pruner = pruneviz.Pruner(model, "magnitude", "channel", layers=[layer]).prune(0.5)
    assert pruner.graph.layers[layer].norm == norm
    dead = ~pruner.group_masks()[layer]
    bn = model.get_submodule(norm)
    assert bool((bn.weight[dead] == 0).all()) and bool((bn.bias[dead] == 0).all())
    pruner.restore()
    assert bool((bn.weight != 0).all())


def test_train_mode_compact_equals_masked():
    model = build("conv-relu-bn", True)
    pruner = pruneviz.Pruner(model, "magnitude", "channel", layers=["conv1", "conv2"]).prune(0.5)
    small = compact(model, pruner.masks)
    model.train(), small.train()
    torch.testing.assert_close(small(X), model(X), rtol=1e-4, atol=1e-5)


def test_a_pruner_instead_of_its_masks_is_a_clear_error():
    model = build("conv-bn-relu", True)
    pruner = pruneviz.Pruner(model, "magnitude", "channel").prune(0.5)
    before = state_of(model)
    with pytest.raises(TypeError, match=r"not the Pruner itself: compact\(model, pruner.masks\)"):
        compact(model, pruner)
    with pytest.raises(TypeError, match="masks must be a dict.*got list"):
        compact(model, [pruner.masks["conv1"]])
    assert same_state(before, state_of(model))


class Untraceable(nn.Module):
    """Data-dependent control flow: fx cannot trace it, so graph.py reads the registration order."""

    def __init__(self):
        super().__init__()
        self.conv1, self.act, self.conv2 = conv(1, 4), nn.Sigmoid(), conv(4, 4)
        self.bn, self.relu, self.fc = nn.BatchNorm2d(4), nn.ReLU(), nn.Linear(4, 10)

    def forward(self, x):
        x = self.conv2(self.act(self.conv1(x)))
        x = self.relu(self.bn(x)) if x.sum() > 0 else x
        return self.fc(x.mean([2, 3]))


def test_untraceable_models_name_the_leak_by_registration_order():
    pruner = pruneviz.Pruner(Untraceable(), "magnitude", "channel")
    assert not pruner.graph.traced
    assert "'act' (Sigmoid) maps a zeroed channel to 0.5" in pruner.skipped["conv1"]
    assert list(pruner.layers) == ["conv2"] and pruner.graph.layers["conv2"].norm == "bn"


class ReluThenNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn, self.conv2, self.fc = conv(1, 4), nn.BatchNorm2d(4), conv(4, 4), nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv2(self.bn(torch.relu(self.conv1(x))))).mean([2, 3]))


def test_apoz_counts_zeros_of_the_relu_input_when_the_norm_comes_after_it():
    """conv1 -> relu -> bn: the Pruner zeros bn with conv1's channels, and APoZ still counts relu's zeros."""
    model = ReluThenNorm().eval()
    info = pruneviz.Pruner(model, "magnitude", "channel").graph.layers["conv1"]
    assert info.norm == "bn" and info.activation_input == "conv1"
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        expected = (torch.relu(model.conv1(x)) == 0).float().mean(dim=(0, 2, 3))
    torch.testing.assert_close(apoz(model, (x, torch.zeros(16, dtype=torch.long)),
                                                           layers=["conv1"])["conv1"].float(), expected)

"""The lecture lab's scale in the zoo: its VGG and a CIFAR ResNet-18, untrained, through the kit's pipeline."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import pruneviz  # noqa: E402
from pruneviz import zoo  # noqa: E402
from pruneviz.granularity import NAMES as GRANULARITIES  # noqa: E402

from .conftest import same_state, state_of  # noqa: E402

LAB = ("cifar10-vgg", "cifar10-resnet18")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: zoo.build(name).eval() for name in LAB}


@pytest.fixture(scope="module")
def images():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(16, 3, 32, 32, generator=generator), torch.randint(0, 10, (16,), generator=generator)


def test_the_lab_vgg_is_the_labs_definition(models):
    model = models["cifar10-vgg"]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is None for c in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 4
    assert (model.classifier.in_features, model.classifier.out_features) == (512, 10)
    assert sum(p.numel() for p in model.parameters()) == 9_228_362
    # the lab's layer names: a state dict trained with the lab's notebook loads as it is
    keys = model.state_dict().keys()
    assert {"backbone.conv0.weight", "backbone.bn7.running_var", "classifier.weight"} <= set(keys)


def test_the_cifar_resnet18_keeps_32x32_until_its_first_stage(models, images):
    model = models["cifar10-resnet18"]
    assert model.stem[0].kernel_size == (3, 3) and model.stem[0].stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.layer1(model.stem(images[0])).shape[-2:] == (32, 32)
    assert sum(p.numel() for p in model.parameters()) == 11_173_962
    assert models["cifar10-vgg"](images[0]).shape == model(images[0]).shape == (16, 10)


def test_they_ship_untrained_and_load_says_what_to_do_instead(tmp_path, models):
    assert set(LAB) == set(zoo.UNTRAINED_NAMES) and not set(LAB) & set(zoo.NAMES)
    for name in LAB:
        with pytest.raises(FileNotFoundError) as error:
            zoo.load(name)
        message = str(error.value)
        assert "untrained" in message and f"build({name!r})" in message and "cifar10(download=True)" in message
        assert zoo.task(name) == "cifar10"
    # weights the user trained load from their own directory
    torch.save(models["cifar10-vgg"].state_dict(), tmp_path / "cifar10-vgg.pt")
    loaded = zoo.load("cifar10-vgg", device="cpu", weights=tmp_path)
    assert same_state(state_of(loaded), state_of(models["cifar10-vgg"]))
    with pytest.raises(ValueError, match="cifar10-resnet18"):  # an unknown name lists them with the others
        zoo.build("cifar10-resnet")


def test_the_explorer_given_a_lab_name_says_it_is_untrained(tmp_path, monkeypatch):
    from pruneviz.widgets import explore

    monkeypatch.setenv("PRUNEVIZ_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="untrained.*cifar10\\(download=True\\)"):
        explore("cifar10-vgg", figure="agg")
    assert list(tmp_path.iterdir()) == []  # nothing downloaded


@pytest.mark.parametrize("name", LAB)
@pytest.mark.parametrize("granularity", [g if g != "N:M" else "2:4" for g in GRANULARITIES])
def test_every_granularity_prunes_and_restores_them(models, images, name, granularity):
    model = models[name]
    before, dense_out = state_of(model), model(images[0])
    pruner = pruneviz.Pruner(model, "magnitude", granularity, "local")
    pruner.prune(0.5)
    assert 0.25 < pruneviz.sparsity(model) <= 0.76  # group: whole groups, so not exactly a half
    assert not torch.equal(model(images[0]), dense_out)
    pruner.restore()
    assert same_state(state_of(model), before)


@pytest.mark.parametrize("name", LAB)
def test_compact_removes_the_channels_and_computes_what_the_mask_computes(models, images, name):
    model = models[name]
    before = state_of(model)
    pruner = pruneviz.Pruner(model, "magnitude", "channel", "local",
                             layers=pruneviz.channel_prunable_layers(model))
    pruner.prune(0.5)
    masked = model(images[0])
    small = pruneviz.compact(model, pruner.masks)
    assert torch.allclose(small(images[0]), masked, atol=1e-5)
    assert pruneviz.count_parameters(small) < 0.75 * pruneviz.count_parameters(model)
    assert pruneviz.macs(small, images[0][:1]) < pruneviz.macs(model, images[0][:1])
    pruner.restore()
    assert same_state(state_of(model), before)


@pytest.mark.parametrize("name", LAB)
def test_the_explorer_runs_them_on_synthetic_images(models, images, name):
    from pruneviz.widgets import explore

    model = models[name]
    before = state_of(model)
    explorer = explore(model, images, figure="agg", grid=(0.0, 0.5))
    explorer.sparsity.value = 0.3
    explorer.granularity.value = "channel"
    explorer.sparsity.value = 0.5
    assert not explorer.errors.errors, explorer.errors.errors
    assert explorer.session.pruner.sparsity() == pytest.approx(0.5, abs=0.02)
    assert explorer.last_readout.nonzero_parameters == pruneviz.count_parameters(model, nonzero=True)
    explorer.session.restore()
    assert same_state(state_of(model), before)

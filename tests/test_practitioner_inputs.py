"""Beyond issue 13: inputs a practitioner brings that used to give a number that means nothing, or an error
from deep inside torch. Each is refused with what was given and what is valid, and the model is left as it was."""
import pytest
import torch
from torch import nn

import pruneviz
from pruneviz import Pruner, evaluate, finetune, sensitivity_scan

from .conftest import same_state, state_of
from .practitioner_models import build, calibration

X, Y = calibration()
BAD_TARGETS = {
    "out of range": (Y + 10, r"targets run from 10 to 13, but the model outputs 4 classes \(valid targets: 0 to 3\)"),
    "negative": (Y - 5, r"targets run from -5 to -2, but the model outputs 4 classes"),
    "float": (Y.float(), r"needs class indices as targets \(an integer tensor\), got torch.float32 targets"),
    "bool": (Y > 1, r"got torch.bool targets"),
    "one-hot": (torch.nn.functional.one_hot(Y, 4), r"one class index per sample as targets \(shape \[N\]\), got "
                                                   r"targets shaped \(48, 4\) \(one-hot\? use y.argmax\(1\)\)"),
}


def _refused(model, call, match, error=ValueError):
    before = state_of(model)
    mode = model.training
    with pytest.raises(error, match=match):
        call()
    assert same_state(before, state_of(model)), "a refused call changed the model"
    assert model.training == mode


@pytest.mark.parametrize("case", BAD_TARGETS)
def test_accuracies_refuse_targets_that_are_not_class_indices_of_the_model(case):
    """An accuracy against labels the model cannot output used to be 0.0 (out of range) or a comparison of floats:
    evaluate, the sensitivity scan (cached and naive), block importance and the widgets' evaluator share one
    accuracy() that refuses them."""
    from pruneviz.widgets.evaluator import CachedEvaluator

    targets, match = BAD_TARGETS[case]
    model = build("conv_bn")
    _refused(model, lambda: evaluate(model, (X, targets)), match)
    for cached in (True, False):
        _refused(model, lambda: sensitivity_scan(model, (X, targets), sparsities=[0.5], progress=False,
                                                 cached=cached), match)
    _refused(model, lambda: pruneviz.block_importance(model, (X, targets), blocks=[]), match)
    _refused(model, lambda: CachedEvaluator(model, (X, targets)).accuracy(), match)


def test_valid_targets_give_the_same_accuracy_everywhere():
    model = build("conv_bn")
    with torch.no_grad():
        expected = float((model(X).argmax(1) == Y).float().mean())
    assert evaluate(model, (X, Y)) == expected
    assert evaluate(model, (X, Y.int())) == expected  # any integer dtype is a class index
    scan = sensitivity_scan(model, (X, Y), sparsities=[0.0], progress=False)
    assert (scan.accuracy == expected).all()


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_evaluate_batch_size_is_a_whole_number(batch_size):
    """batch_size=-1 used to say 'data is empty', 0 'range() arg 3 must not be zero'."""
    model = build("conv_bn")
    _refused(model, lambda: evaluate(model, (X, Y), batch_size=batch_size),
             rf"batch_size must be a whole number >= 1, got {batch_size!r}")


def test_training_a_frozen_model_says_so():
    """Every parameter frozen: torch's 'optimizer got an empty parameter list' told nothing."""
    model = build("conv_bn")
    for param in model.parameters():
        param.requires_grad_(False)
    _refused(model, lambda: pruneviz.train(model, (X, Y), epochs=1, progress=False),
             r"every parameter of the model has requires_grad=False \(Sequential is frozen\)")
    pruner = Pruner(model).prune(0.5)
    _refused(model, lambda: finetune(model, (X, Y), pruner=pruner, epochs=1, progress=False), "requires_grad=False")


class Attention(nn.Module):
    """A token embedding, one transformer encoder block and a classifier: [N, 1, 4, 4] read as 4 tokens of 4."""

    def __init__(self, d=8, heads=2, ff=16):
        super().__init__()
        self.inp = nn.Linear(4, d)
        self.block = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
        self.fc = nn.Linear(d, 4)

    def forward(self, x):
        return self.fc(self.block(self.inp(x.reshape(x.shape[0], 4, 4))).mean(1))


def test_macs_count_attention_in_eval_mode_without_gradients():
    """In eval mode without gradients, nn.MultiheadAttention and TransformerEncoderLayer take a fused "fast path"
    that torch.utils.flop_counter does not see, and on the CPU it has no formula for the attention kernel itself:
    the block counted 160 of its 2,464 MACs. Counted here by hand: every matmul of the block."""
    model = Attention().eval()
    tokens, d, heads, ff = 4, 8, 2, 16
    by_hand = (tokens * 4 * d  # inp
               + tokens * d * 3 * d  # q, k, v projections
               + 2 * heads * tokens * tokens * (d // heads)  # q k^T and weights x v
               + tokens * d * d  # out projection
               + tokens * d * ff + tokens * ff * d  # feed-forward
               + d * 4)  # classifier
    assert pruneviz.macs(model, X[:1]) == by_hand == 2464
    assert torch.backends.mha.get_fastpath_enabled(), "the fast path is switched back on after counting"
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    seq = torch.randn(1, 5, 8)

    class Self(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]
    assert pruneviz.macs(Self(), seq) == 5 * 8 * 24 + 2 * 2 * 5 * 5 * 4 + 5 * 8 * 8


@pytest.mark.parametrize("example, error", [(None, "got NoneType"), (X[:1].numpy(), r"got ndarray \(convert it"),
                                            ([X[:1]], "got list")])
def test_macs_and_latency_take_one_input_tensor(example, error):
    model = build("conv_bn")
    for count in (pruneviz.macs, pruneviz.layer_macs, pruneviz.latency):
        with pytest.raises(TypeError, match=f"example must be one input tensor of the model.*{error}"):
            count(model, example)


@pytest.mark.parametrize("kwargs, match", [({"runs": 0}, "runs must be a whole number >= 1, got 0"),
                                           ({"warmup": -1}, "warmup must be a whole number >= 0, got -1")])
def test_latency_counts_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pruneviz.latency(build("mlp"), X[:1], **kwargs)


@pytest.mark.parametrize("count", [pruneviz.count_parameters, pruneviz.size_bytes, pruneviz.sparsity,
                                   pruneviz.layer_sparsity])
def test_metrics_name_what_is_not_a_model(count):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        count("digits-cnn")
    assert count(nn.ReLU()) in (0, 0.0, {})  # a module without parameters counts nothing


def test_a_model_on_the_meta_device_is_refused_where_values_are_needed():
    """Shapes without values: counting parameters and MACs works, pruning, evaluating and counting zeros say why
    they cannot (they raised 'Tensor.item() cannot be called on meta tensors')."""
    model = build("conv_bn").to("meta")
    dense = build("conv_bn")
    assert pruneviz.count_parameters(model) == pruneviz.count_parameters(dense)
    assert pruneviz.macs(model, X[:1]) == pruneviz.macs(dense, X[:1])
    meta = r"the model's weights, but 0.weight \(and \d+ more\) is on the 'meta' device .*model.to_empty"
    for call in (lambda: Pruner(model), lambda: evaluate(model, (X, Y)), lambda: pruneviz.sparsity(model),
                 lambda: pruneviz.count_parameters(model, nonzero=True), lambda: pruneviz.size_bytes(model, True),
                 lambda: Pruner.from_state_dict(model, Pruner(dense).state_dict())):
        with pytest.raises(ValueError, match=meta):
            call()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_a_torchscript_model_is_refused_with_what_to_do():
    """It used to say 'the model has no Linear or Conv layer'."""
    scripted = torch.jit.script(build("conv_bn"))
    with pytest.raises(TypeError, match=r"TorchScript module .* prune the original nn.Module, then script it"):
        Pruner(scripted)
    assert evaluate(scripted, (X, Y)) == evaluate(build("conv_bn"), (X, Y))  # evaluating it is fine


@pytest.mark.parametrize("bad, error, match", [
    (lambda masks: {n: m.float() * 3 for n, m in masks.items()}, ValueError,
     r"the mask of '0' must be bool \(True = kept\), got torch.float32; from 0/1 values: mask.bool\(\)"),
    (lambda masks: {n: m.long() for n, m in masks.items()}, ValueError, "got torch.int64"),
    (lambda masks: {"0": masks["0"].tolist()}, ValueError, "got list"),
    (lambda masks: {"0": masks["0"][:4]}, ValueError,
     r"the mask of '0' has shape \(4, 1, 3, 3\); expected the weight's shape \(8, 1, 3, 3\)"),
    (lambda masks: {"1": torch.ones(8, dtype=torch.bool)}, ValueError, r"unknown layer '1'; valid choices: '0', '3'"),
    (lambda masks: masks.items(), TypeError, "masks must be a dict"),
])
@pytest.mark.parametrize("call", ["to_torch_prune", "compact"])
def test_masks_handed_on_are_bool_tensors_of_the_weights_shape(bad, error, match, call):
    """to_torch_prune multiplied a float mask in (a mask of 3.0 tripled the kept weights, silently), passed a
    wrongly shaped one to torch's AssertionError, and took a BatchNorm for a layer; it and compact now share one
    check of the masks."""
    model = build("conv_bn")
    masks = Pruner(model, granularity="channel").prune(0.5).masks
    given = bad(masks)
    _refused(model, lambda: getattr(pruneviz, call)(model, given), match, error)
    assert not any(hasattr(m, "weight_orig") for m in model.modules())


def test_to_torch_prune_given_the_pruner_says_how():
    model = build("conv_bn")
    pruner = Pruner(model).prune(0.5)
    _refused(model, lambda: pruneviz.to_torch_prune(model, pruner), r"to_torch_prune takes a Pruner's masks, not "
             r"the Pruner itself: to_torch_prune\(model, pruner.masks\)", TypeError)


def test_a_model_that_reads_token_ids_gets_them_as_integers():
    """Every entry point cast inputs to the model's dtype, so an nn.Embedding got float token ids and raised
    ('Expected tensor for argument #1 indices to have one of the following scalar types: Long, Int'): evaluate,
    the scan, data criteria, training, the widgets. Integer inputs of a model that reads indices now stay integers;
    other models still get their inputs in their dtype."""
    from pruneviz.widgets.evaluator import CachedEvaluator

    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(20, 8), nn.Flatten(), nn.Linear(40, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    tokens, labels = torch.randint(0, 20, (32, 5)), torch.randint(0, 4, (32,))
    with torch.no_grad():
        expected = float((model(tokens).argmax(1) == labels).float().mean())
    assert evaluate(model, (tokens, labels)) == expected
    assert CachedEvaluator(model, (tokens, labels)).accuracy() == expected
    scan = sensitivity_scan(model, (tokens, labels), sparsities=[0.5], progress=False)
    assert scan.attrs["dense_accuracy"] == expected
    assert pruneviz.macs(model, tokens[:1]) == 40 * 16 + 16 * 4
    for criterion in ("apoz", "regression", "obd"):
        Pruner(model, criterion, "channel" if criterion != "obd" else "element", data=(tokens, labels))
    pruner = Pruner(model).prune(0.5)
    finetune(model, (tokens, labels), pruner=pruner, epochs=1, progress=False)
    conv = build("conv")  # an image model still gets integer pixels as floats
    assert evaluate(conv, (X.round().long(), Y)) == evaluate(conv, (X.round(), Y))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("wrap", [nn.DataParallel, torch.compile], ids=["DataParallel", "compile"])
def test_compact_of_a_wrapped_model_is_the_compacted_model_it_wraps(wrap):
    """fx cannot trace nn.DataParallel or torch.compile's module: compact said 'data-dependent control flow is the
    usual cause'. A Pruner on the wrapper names its layers module.<name> / _orig_mod.<name>; compact unwraps."""
    wrapped = wrap(build("conv_bn"))
    pruner = Pruner(wrapped, granularity="channel").prune(0.5)
    before = state_of(wrapped)
    small = pruneviz.compact(wrapped, pruner.masks)
    assert same_state(before, state_of(wrapped))
    with torch.no_grad():
        torch.testing.assert_close(small(X), wrapped(X), rtol=1e-4, atol=1e-5)
    assert pruneviz.count_parameters(small) < pruneviz.count_parameters(wrapped)
    assert [m.weight.shape[0] for m in small if isinstance(m, nn.Conv2d)] == [4, 4]

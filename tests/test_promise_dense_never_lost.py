"""Promise 8, "dense weights are never lost", and issue 13's property: every accepted input gives the right answer;
every refused one leaves the model bit for bit as it was. Over models a practitioner brings (MLPs, conv nets with
and without BatchNorm, with and without biases, a residual block, float64), granularities and criteria."""
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

import pruneviz
from pruneviz import Pruner
from pruneviz.errors import ModelChangedError

from .conftest import same_state, state_of
from .practitioner_models import KINDS, build, calibration

GRANULARITIES = ["element", "2:4", "vector", "kernel", "channel", "input_channel"]
DATA_FREE = ["magnitude", "l2", "random"]
CRITERIA = DATA_FREE + ["obd", "apoz", "scaling", "regression"]
OPTIONS = {"regression": {"limit": 32, "positions": 256}, "obd": {"limit": 32}}
# groups as the design defines them, written out here rather than read from the library
GROUP_DIMS = {"element": None, "channel": (0,), "input_channel": (1,), "kernel": (0, 1), "vector": (0, 1, 2)}
BAD_RATIOS = [1.5, -0.1, float("nan"), float("inf"), "0.5", True, None, [0.5], torch.tensor([0.2, 0.3])]

models = st.builds(lambda kind, bias, dtype: (kind, bias, dtype), st.sampled_from(KINDS), st.booleans(),
                   st.sampled_from([torch.float32, torch.float64]))
ratios = st.floats(0.0, 1.0, allow_nan=False)


def _group_scores(weight: torch.Tensor, granularity: str, criterion: str) -> torch.Tensor:
    dims = GROUP_DIMS[granularity]
    summed = [] if dims is None else [d for d in range(weight.dim()) if d not in dims]
    if criterion == "l2":
        return weight.square().sum(summed).sqrt() if summed else weight.abs()
    return weight.abs().sum(summed) if summed else weight.abs()


def _group_view(mask: torch.Tensor, granularity: str) -> tuple[torch.Tensor, bool]:
    """(one bool per group, whether the mask is constant within each group)."""
    dims = GROUP_DIMS[granularity]
    summed = [] if dims is None else [d for d in range(mask.dim()) if d not in dims]
    if not summed:
        return mask, True
    return mask.amax(summed), bool((mask.amin(summed) == mask.amax(summed)).all())


def _check_right_answer(model, before, pruner, criterion, granularity, scope, ratios):
    """What an accepted prune must have written, checked against the dense weights taken before any prune."""
    params = dict(model.named_parameters())
    touched = set()
    kept_scores, pruned_scores, pruned_weights, total_weights, largest = [], [], 0, 0, 0
    for name, mask in pruner.masks.items():
        key = f"{name}.weight"
        dense, weight = before[key], params[key].detach()
        assert torch.equal(weight, torch.where(mask, dense, torch.zeros((), dtype=dense.dtype))), key
        touched.add(key)
        pruned_weights += int((~mask).sum())
        total_weights += mask.numel()
        if granularity == "2:4":
            continue
        groups, constant = _group_view(mask, granularity)
        assert constant, f"{name}: the mask cuts through a {granularity} group"
        largest = max(largest, mask.numel() // groups.numel())
        if scope == "local":
            assert int((~groups).sum()) == min(groups.numel(), round(ratios[name] * groups.numel())), name
        if criterion in ("magnitude", "l2"):
            scores = _group_scores(dense, granularity, criterion)
            kept_scores.append(scores[groups])
            pruned_scores.append(scores[~groups])
            if scope == "local" and bool((~groups).any()) and bool(groups.any()):
                assert float(scores[~groups].max()) <= float(scores[groups].min()), name
        if granularity == "channel":
            keep = groups
            info = pruner.graph.layers[name]
            for extra in (f"{name}.bias", f"{info.norm}.weight", f"{info.norm}.bias"):
                if extra in params:
                    expected = torch.where(keep, before[extra], torch.zeros((), dtype=before[extra].dtype))
                    assert torch.equal(params[extra].detach(), expected), extra
                    touched.add(extra)
    if scope == "global" and granularity != "2:4":
        ratio = next(iter(ratios.values()))
        # the guard keeps one channel of a layer one threshold would empty (pruner.guarded): at most one group more
        held_back = sum(pruner.layers[n].weight.numel() // pruner.scores[n].numel() for n in pruner.guarded)
        assert abs(pruned_weights - ratio * total_weights) <= largest / 2 + held_back + 1e-6
        if criterion in ("magnitude", "l2") and pruned_weights and pruned_weights < total_weights \
                and not pruner.guarded:
            assert max(float(s.max()) for s in pruned_scores if s.numel()) <= \
                min(float(s.min()) for s in kept_scores if s.numel())
    now = state_of(model)
    assert all(torch.equal(now[k], before[k]) for k in now if k not in touched), "a tensor out of scope moved"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=models, criterion=st.sampled_from(CRITERIA), granularity=st.sampled_from(GRANULARITIES),
       scope=st.sampled_from(["local", "global"]), data=st.data())
def test_accepted_inputs_give_the_right_answer_refused_ones_change_nothing(spec, criterion, granularity, scope,
                                                                           data):
    kind, bias, dtype = spec
    model = build(kind, bias=bias, dtype=dtype)
    before = state_of(model)
    calib = calibration(dtype=dtype) if criterion not in DATA_FREE else None
    try:
        pruner = Pruner(model, criterion, granularity, scope, data=calib, **OPTIONS.get(criterion, {}))
    except (ValueError, TypeError):  # a combination that means nothing here: refused, nothing changed
        event("Pruner refused")
        assert same_state(before, state_of(model))
        return
    event(f"Pruner built ({criterion})")
    assert same_state(before, state_of(model)), "building a Pruner changed the model"
    layers = list(pruner.layers)
    valid = st.one_of(ratios.map(lambda r: ("ratio", r)),
                      st.dictionaries(st.sampled_from(layers), ratios, min_size=1).map(lambda d: ("dict", d)))
    invalid = st.one_of(st.sampled_from(BAD_RATIOS).map(lambda r: ("bad", r)),
                        st.just(("bad", {"no_such_layer": 0.5})),
                        st.sampled_from(layers).map(lambda n: ("bad", {n: 1.5})),
                        st.sampled_from(sorted(pruner.skipped) or ["no_such_layer"]).map(lambda n: ("bad", {n: 0.5})))
    for kind_of, value in data.draw(st.lists(st.one_of(valid, invalid), min_size=1, max_size=5)):
        if kind_of == "dict" and scope == "global":
            kind_of = "bad"  # one threshold takes one number: a dict is refused
        held = state_of(model)
        masks = {n: m.clone() for n, m in pruner.masks.items()}
        if kind_of == "bad":
            with pytest.raises(ValueError):
                pruner.prune(value)
            assert same_state(held, state_of(model)), f"refused {value!r} changed the model"
            assert all(torch.equal(masks[n], pruner.masks[n]) for n in masks)
            continue
        pruner.prune(value)
        expected = {n: value for n in layers} if kind_of == "ratio" else {n: value.get(n, 0.0) for n in layers}
        _check_right_answer(model, before, pruner, criterion, granularity, scope, expected)
    pruner.restore()
    assert same_state(before, state_of(model))


# -- promise 8: a second Pruner, an edited or replaced layer, a hooked model, a failed call -----------------------

actions = st.lists(st.tuples(st.sampled_from(["prune", "restore", "new"]), st.integers(0, 3), ratios,
                             st.sampled_from(DATA_FREE), st.sampled_from(["element", "channel", "kernel"])),
                   min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(spec=models, steps=actions)
def test_many_pruners_on_one_model_share_the_dense_weights(spec, steps):
    """Pruners built one after another on one model, pruning and restoring in any order: each writes its masks over
    the true dense weights (not what another left in the model), and their restores give the dense model back."""
    kind, bias, dtype = spec
    model = build(kind, bias=bias, dtype=dtype)
    dense = state_of(model)
    pruners = [Pruner(model)]
    for action, which, ratio, criterion, granularity in steps:
        pruner = pruners[which % len(pruners)]
        if action == "new":
            try:
                pruners.append(Pruner(model, criterion, granularity))
            except ValueError:
                continue
            # scored on the dense weights, whatever the model held: the same scores as on a dense copy
            fresh = Pruner(pruneviz.dense.dense_copy(model), criterion, granularity)
            assert all(torch.equal(pruners[-1].scores[n], fresh.scores[n]) for n in fresh.scores)
        elif action == "prune":
            pruner.prune(ratio)
            for name, mask in pruner.masks.items():
                key = f"{name}.weight"
                assert torch.equal(model.get_parameter(key).detach(),
                                   torch.where(mask, dense[key], torch.zeros((), dtype=dtype))), key
        else:
            pruner.restore()
            for key in pruner._dense:
                assert torch.equal(model.get_parameter(key).detach(), dense[key]), key
    for pruner in pruners:  # each gives back the tensors it writes (Pruners on other layers, theirs)
        pruner.restore()
    assert same_state(dense, state_of(model))
    for pruner in pruners:  # and every one of them can still prune and give the dense model back
        pruner.prune(0.5).restore()
        assert same_state(dense, state_of(model))


def test_second_pruner_on_a_pruned_model_finds_the_dense_weights(cnn, digits):
    """Issue 13 item 8: Pruner B built on a model Pruner A pruned; after both restore the model is dense."""
    dense, accuracy = state_of(cnn), pruneviz.evaluate(cnn, digits.test)
    first = Pruner(cnn, "magnitude", "channel").prune(0.6)
    second = Pruner(cnn, "l2", "element", "global")
    assert torch.equal(second.dense_weight("conv2"), dense["conv2.weight"])
    second.prune(0.5)
    first.restore()
    second.restore()
    assert same_state(dense, state_of(cnn)) and pruneviz.evaluate(cnn, digits.test) == accuracy


@pytest.mark.parametrize("edit", ["no_grad", "data", "load_state_dict", "train"])
def test_edited_weights_are_not_written_over(edit, digits):
    """Item 9: after the user changes the weights behind the Pruner's back, prune() refuses (nothing written);
    rescore() adopts the edit, so the edited weights become the dense ones and are never lost."""
    model = build("conv_bn")
    pruner = Pruner(model, granularity="channel").prune(0.5)
    x, y = calibration()
    if edit == "no_grad":
        with torch.no_grad():
            model[3].weight.mul_(1.5)
    elif edit == "data":
        model[3].weight.data.mul_(1.5)
    elif edit == "load_state_dict":
        other = build("conv_bn", seed=7).state_dict()
        model.load_state_dict(other)
    else:
        pruneviz.train(model, (x, y), epochs=1, lr=0.01, progress=False)
    edited = state_of(model)
    with pytest.raises(ModelChangedError, match="rescore"):
        pruner.prune(0.3)
    assert same_state(edited, state_of(model))
    pruner.rescore()
    key = "3.weight"
    kept = pruner.masks["3"]
    assert torch.equal(pruner.dense_weight("3")[kept], edited[key][kept])  # the edit is the dense copy now
    pruner.prune(0.3)  # accepted again


def test_replaced_layer_is_refused_and_the_rest_stays_recoverable():
    model = build("conv")
    dense = state_of(model)
    pruner = Pruner(model).prune(0.5)
    original = model[2]
    model[2] = nn.Conv2d(8, 8, 3, padding=1)
    held = state_of(model)
    for call in (lambda: pruner.prune(0.7), pruner.restore, pruner.rescore, pruner.apply_masks):
        with pytest.raises(ModelChangedError, match="replaced"):
            call()
        assert same_state(held, state_of(model))
    model[2] = original  # put back: the Pruner works again and the dense weights are all there
    pruner.restore()
    assert same_state(dense, state_of(model))


def test_model_converted_after_the_pruner_was_built():
    model = build("mlp")
    pruner = Pruner(model).prune(0.5)
    model.double()
    held = state_of(model)
    with pytest.raises(ModelChangedError, match="float64"):
        pruner.prune(0.6)
    with pytest.raises(ModelChangedError, match="new Pruner"):
        pruner.restore()
    assert same_state(held, state_of(model))
    Pruner(model).prune(0.3).restore()  # a new Pruner on the converted model works
    assert same_state(held, state_of(model))


def test_hooked_model_is_refused_with_how():
    """Item 7: a model pruned by torch.nn.utils.prune is refused before anything is written, saying how; a hook
    added after the Pruner was built is detected and the Pruner refuses rather than crash half-way."""
    from torch.nn.utils import prune as torch_prune

    model = build("conv")
    torch_prune.l1_unstructured(model[2], "weight", amount=0.3)
    held = state_of(model)
    with pytest.raises(ValueError, match="from_torch_prune"):
        Pruner(model)
    assert same_state(held, state_of(model))
    masks = pruneviz.from_torch_prune(model, remove=True)
    pruner = Pruner(model)
    assert int((~masks["2"]).sum()) == round(0.3 * masks["2"].numel())

    dense = state_of(model)
    pruner.prune(0.5)
    pruneviz.to_torch_prune(model, pruner.masks)
    held = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ModelChangedError, match="torch.nn.utils.prune"):
        pruner.restore()
    assert held.keys() == model.state_dict().keys()
    assert all(torch.equal(held[k], v) for k, v in model.state_dict().items())
    pruneviz.from_torch_prune(model, remove=True)
    pruner.restore()
    assert same_state(dense, state_of(model))


def test_failed_finetune_puts_the_model_back(digits):
    """Item 10: a training run that fails half-way (a DataLoader whose later batches hold targets the model
    cannot output: the check before training sees only the first batch) leaves weights, BatchNorm statistics and
    train/eval modes as they were, and the Pruner goes on as before."""
    model = build("conv_bn")
    pruner = Pruner(model, granularity="channel").prune(0.5)
    model.train()
    model[1].eval()  # a frozen BatchNorm: mixed modes must come back as they were
    held, modes = state_of(model), [m.training for m in model.modules()]
    x, y = calibration(256)
    y[200:] = 7  # the model has 4 classes
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)
    with pytest.raises((IndexError, RuntimeError)) as failure:
        pruneviz.finetune(model, loader, pruner=pruner, steps=20, progress=False)
    assert "put back as it was" in "".join(getattr(failure.value, "__notes__", ["put back as it was"]))
    assert same_state(held, state_of(model)) and [m.training for m in model.modules()] == modes
    pruner.prune(0.25)  # nothing stale: the Pruner knows the model is what it wrote
    pruner.restore()
    assert same_state(build("conv_bn").state_dict(), state_of(model))


def test_diverging_training_is_stopped_and_rolled_back():
    model = build("mlp")
    held = state_of(model)
    x, y = calibration(256)
    with pytest.raises(FloatingPointError, match="loss became"):
        pruneviz.train(model, (x * 1e3, y), optimizer="sgd", lr=1e20, steps=30, progress=False)
    assert same_state(held, state_of(model))


def test_finetune_then_prune_asks_for_rescore(digits):
    """Fine-tuning through finetune() is the Pruner's own write (apply_masks); pruning again from the old dense copy
    would throw the fine-tuned weights away, so prune() asks for rescore() or restore() first."""
    model = build("mlp")
    pruner = Pruner(model).prune(0.5)
    pruneviz.finetune(model, calibration(64), pruner=pruner, steps=5, progress=False)
    tuned = state_of(model)
    with pytest.raises(ModelChangedError, match="fine-tuned"):
        pruner.prune(0.6)
    assert same_state(tuned, state_of(model))
    pruner.rescore().prune(0.6)  # iterative pruning: the fine-tuned weights are the dense ones now
    kept = pruner.masks["1"]
    assert torch.equal(model[1].weight[kept], tuned["1.weight"][kept])


def test_widgets_share_the_dense_weights(cnn, digits):
    """Item 8 in the widgets: two explorers on one model, and an explorer then a compare view (notebook 00)."""
    import matplotlib

    matplotlib.use("Agg")
    from pruneviz.widgets import compare, explore

    dense, accuracy = state_of(cnn), pruneviz.evaluate(cnn, digits.test)
    grid = (0.0, 0.5)
    one = explore(cnn, digits.test, calibration=digits.val, figure="agg", grid=grid)
    two = explore(cnn, digits.test, calibration=digits.val, figure="agg", grid=grid)
    one.criterion.value = "apoz"
    one.sparsity.value = 0.59
    two.criterion.value = "apoz"  # built while the model is pruned by the first explorer
    assert two.last_readout.accuracy == accuracy == two.session.curve()[1][0]
    assert two.last_readout.accuracy == pruneviz.evaluate(cnn, digits.test)  # the model as it is
    one.sparsity.value = 0.5
    assert one.last_readout.accuracy == pruneviz.evaluate(cnn, digits.test)
    view = compare(cnn, digits.test, ["magnitude", "random"], sparsity=0.0, figure="agg", grid=grid)
    assert all(r.accuracy == accuracy for r in view.readouts.values())  # its copies are dense, not pruned
    one.session.restore()
    two.session.restore()
    assert same_state(dense, state_of(cnn))


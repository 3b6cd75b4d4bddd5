"""Results that need training ship as artefacts (issue: same numbers on every machine): the store's modes, its
keys, the shipped files, and their reproduction with the recorded kernels."""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import pruneviz
from pruneviz import artefacts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The shipped store moved to a temporary folder, so the modes can be tried on it."""
    monkeypatch.setattr(artefacts, "STORE", tmp_path)
    return tmp_path


def counting(result):
    calls = []

    def compute():
        calls.append(1)
        return result
    return compute, calls


def test_a_miss_is_an_error_under_require_naming_the_artefact(store, monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "require")
    compute, calls = counting([{"a": 1}])
    with pytest.raises(LookupError, match="'sweep'.*not shipped.*python -m pruneviz.artefacts make"):
        artefacts.rows("sweep", compute, inputs=(torch.ones(2),))
    assert not calls and not list(store.iterdir())


def test_write_stores_rows_and_kernels_then_read_returns_them_without_computing(store, monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "write")
    rows = [{"sparsity": 0.5, "accuracy": 0.9}]
    assert artefacts.rows("sweep", lambda: rows, inputs=(torch.ones(2),), options={"seed": 0}) == rows
    (path,) = store.glob("sweep-*.json")
    record = json.loads(path.read_text())
    assert record["kernels"]["aten"] == torch.backends.cpu.get_cpu_capability() and record["rows"] == rows
    for mode in ("read", "require"):
        monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", mode)
        compute, calls = counting([{"other": 1}])
        assert artefacts.rows("sweep", compute, inputs=(torch.ones(2),), options={"seed": 0}) == rows
        assert not calls


def test_other_inputs_or_options_are_a_miss_and_read_mode_computes_live_with_a_warning(store, monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "write")
    artefacts.rows("sweep", lambda: [{"x": 1}], inputs=(torch.ones(2),), options={"seed": 0})
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "read")
    for inputs, options in (((torch.ones(2) * 2,), {"seed": 0}), ((torch.ones(2),), {"seed": 1})):
        compute, calls = counting([{"x": 2}])
        with pytest.warns(artefacts.NotShipped, match="computed on this machine"):
            assert artefacts.rows("sweep", compute, inputs=inputs, options=options) == [{"x": 2}]
        assert calls
    assert len(list(store.glob("sweep-*.json"))) == 1  # read mode never writes into the shipped store


def test_live_always_computes_and_never_writes(store, monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "write")
    artefacts.rows("sweep", lambda: [{"x": 1}], inputs=(), options={})
    compute, calls = counting([{"x": 2}])
    assert artefacts.rows("sweep", compute, inputs=(), options={}, live=True) == [{"x": 2}] and calls
    assert json.loads(next(store.glob("sweep-*.json")).read_text())["rows"] == [{"x": 1}]


def test_a_folder_of_your_own_is_a_cache_written_on_a_miss(store, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "require")
    own = tmp_path_factory.mktemp("own")
    compute, calls = counting([{"x": 1}])
    artefacts.rows("sweep", compute, inputs=(), store=own)
    artefacts.rows("sweep", compute, inputs=(), store=own)
    assert len(calls) == 1 and len(list(own.glob("sweep-*.json"))) == 1


def test_verify_recomputes_and_refuses_a_different_result(store, monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "write")
    artefacts.rows("sweep", lambda: [{"x": 1.0}], inputs=(), options={})
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "verify")
    compute, calls = counting([{"x": 1.0}])
    assert artefacts.rows("sweep", compute, inputs=(), options={}) == [{"x": 1.0}] and calls
    with pytest.raises(artefacts.ArtefactMismatch, match="differs from the shipped one"):
        artefacts.rows("sweep", lambda: [{"x": 1.0000001}], inputs=(), options={})


def test_a_model_artefact_round_trips_bit_for_bit_and_loads_with_weights_only(store, monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "write")
    torch.manual_seed(0)
    trained = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    made = artefacts.model("net", lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), lambda: trained,
                           inputs=(), options={"epochs": 1})
    (weights,) = store.glob("net-*.pt")
    state = torch.load(weights, weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in trained.state_dict().items())
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "require")
    read = artefacts.model("net", lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)),
                           lambda: pytest.fail("trained although shipped"), inputs=(), options={"epochs": 1})
    assert not read.training and all(torch.equal(a, b) for a, b in zip(read.state_dict().values(),
                                                                       made.state_dict().values()))


def test_the_key_depends_on_values_not_on_the_container_or_machine():
    x, y = torch.rand(5, 2, generator=torch.Generator().manual_seed(0)), torch.arange(5)
    data = torch.utils.data.TensorDataset(x, y)
    assert artefacts.input_key(data) == artefacts.input_key((x, y))
    assert artefacts.input_key(data) != artefacts.input_key((x + 1e-7, y))
    assert artefacts.input_key({"a": 1}) != artefacts.input_key({"a": 1.0000001})
    model = nn.Linear(2, 2)
    before = artefacts.input_key(model)
    with torch.no_grad():
        model.bias.add_(1.0)
    assert artefacts.input_key(model) != before


def test_a_bad_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "sometimes")
    with pytest.raises(ValueError, match="'sometimes'.*read, require, write, verify"):
        artefacts.mode()


def test_every_shipped_artefact_records_the_kernels_it_was_made_with():
    records = [json.loads(p.read_text()) for p in sorted(artefacts.STORE.glob("*.json"))]
    assert records, "no shipped artefacts"
    for record in records:
        assert record["kernels"]["aten"] == artefacts.KERNELS["ATEN_CPU_CAPABILITY"].upper(), record["name"]
        assert {"name", "key", "options"} <= record.keys()
    for weights in artefacts.STORE.glob("*.pt"):
        assert weights.with_suffix(".json").exists()
        torch.load(weights, map_location="cpu", weights_only=True)


REPRODUCE = """
import pruneviz
from pruneviz.criteria.scaling import slimming_network
train = pruneviz.data.digits().train
for strength in (0.0, 3e-2):
    slimming_network(train, strength)  # verify mode: trained again and compared with the shipped weights
print("ok")
"""


@pytest.mark.skipif(not artefacts.can_run_recorded_kernels(),
                    reason=f"this CPU cannot run the recorded kernels {artefacts.KERNELS} (not x86 with AVX2)")
def test_the_slimming_networks_reproduce_bit_for_bit_with_the_recorded_kernels():
    """Trained again in a fresh process with the kernels the artefacts record: equal bit for bit."""
    env = {**artefacts.kernel_environment(), "PRUNEVIZ_ARTEFACTS": "verify", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", REPRODUCE], env=env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.skipif(os.environ.get("ATEN_CPU_CAPABILITY") == "default",
                    reason="this run uses the plain kernels already (CI's second pass runs every notebook so)")
def test_a_training_notebook_passes_nbval_with_plain_kernels_and_three_threads():
    """Notebook 03 trains (network slimming): with ATen's plain kernels, as a CPU unlike the one that wrote the
    outputs runs them, and another thread count, its stored outputs still come out the same."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "3", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "notebooks/03_scaling.ipynb"],
                         env=env, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:]


def test_table_keys_a_dataframe_function_on_its_arguments(store, monkeypatch, mlp, digits):
    import pandas as pd

    calls = []

    def sweep(model, data, ratios, *, seed=0):
        calls.append(seed)
        return pd.DataFrame({"sparsity": ratios, "seed": [seed] * len(ratios)})

    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "write")
    made = artefacts.table(sweep, mlp, digits.test, [0.5, 0.9], seed=1)
    monkeypatch.setenv("PRUNEVIZ_ARTEFACTS", "require")
    read = artefacts.table(sweep, mlp, digits.test, [0.5, 0.9], seed=1)
    pd.testing.assert_frame_equal(made, read)
    assert calls == [1]
    with pytest.raises(LookupError):
        artefacts.table(sweep, mlp, digits.test, [0.5, 0.9], seed=2)
    with pytest.raises(TypeError, match="cannot key an artefact on .*print"):
        artefacts.table(sweep, mlp, digits.test, [0.5], seed=print)
    with pytest.raises(TypeError, match="named function"):
        artefacts.table(lambda: pd.DataFrame(), mlp)

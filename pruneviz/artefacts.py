"""Results that need training, made once and shipped with the package, so that they are the same on every CPU.

Why: PyTorch runs other vector kernels on other CPUs (AVX2, AVX-512, ARM, a GPU), float sums come out in another
order, and a few epochs of training end somewhere else: a network trained in a notebook prints other numbers on a
student's laptop than on the machine that wrote the notebook's outputs. Inference on fixed weights moves only in
the last bits, which the kit's printing precision does not show. So the rule is: **a number that needs training
is read from a shipped artefact**; inference on it is computed live.

An artefact is a trained model (a state dict) or a table of rows, stored under ``pruneviz/zoo/results/`` with a
key: a hash of everything it depends on (the weights it starts from, the data, the options; not the CPU, not
torch's version) and a record of the kernels it was made with. A computation that would train asks the store:

- key found: the shipped result is returned (inference on it runs live);
- ``live=True``: computed now, on this machine, and not stored (the notebooks' "train it yourself" switch);
- key not found: computed now with a :class:`NotShipped` warning (a student who changed an option gets a result,
  told that its last digits belong to this CPU).

``PRUNEVIZ_ARTEFACTS`` changes what a miss does: ``require`` (the tests and nbval: a miss is an error, so a stale
artefact turns CI red instead of training live), ``write`` (maintainers: compute and store misses;
``python -m pruneviz.artefacts make`` executes notebooks so) and ``verify`` (compute every artefact again and
compare with the shipped one bit for bit: with :data:`KERNELS` set, on an x86 CPU, they are equal).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

STORE = Path(__file__).parent / "zoo" / "results"
MODES = ("read", "require", "write", "verify")
# The kernels every shipped artefact (and the zoo) is made with: AVX2 is what most x86 CPUs run, and an AVX-512
# CPU can be told to use it (ATen's dispatch, oneDNN's convolutions and MKL's matrix products each by its own
# variable). ARM and GPUs cannot: there the artefacts are read, not remade.
KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


class NotShipped(UserWarning):
    """A result that needs training was computed on this machine: its last digits may differ from the text."""


class ArtefactMismatch(AssertionError):
    """``verify`` mode: the recomputed result is not the shipped one."""


def mode() -> str:
    """What a miss does, from ``PRUNEVIZ_ARTEFACTS`` (default ``read``)."""
    value = os.environ.get("PRUNEVIZ_ARTEFACTS", "read").strip().lower() or "read"
    if value not in MODES:
        raise ValueError(f"PRUNEVIZ_ARTEFACTS={value!r} is not a mode; valid choices: {', '.join(MODES)}")
    return value


def kernels() -> dict[str, str]:
    """The kernels this process runs: ATen's CPU capability, the oneDNN and MKL caps, torch's version."""
    return {"aten": torch.backends.cpu.get_cpu_capability(),
            "dnnl": os.environ.get("DNNL_MAX_CPU_ISA", "native"),
            "mkl": os.environ.get("MKL_ENABLE_INSTRUCTIONS", "native"),
            "torch": torch.__version__.split("+")[0]}


def input_key(*parts: Any) -> str:
    """A hash of what a result depends on: modules (their state dict), tensors, datasets, arrays and JSON-able
    options, taken of their bytes on the CPU. Key on stored values (shipped weights, the data sets) and on the
    options that make the rest (a seed, an architecture's name): a tensor computed by float kernels, even a
    seeded random initialisation, differs in its last bits on another CPU, and so would the key."""
    digest = hashlib.sha256()
    for part in parts:
        _update(digest, part)
    return digest.hexdigest()[:32]


def _update(digest, part: Any) -> None:
    from .data import as_tensors

    if isinstance(part, nn.Module):
        _update(digest, dict(sorted(part.state_dict().items())))
    elif isinstance(part, torch.Tensor):
        tensor = part.detach().cpu().contiguous()
        digest.update(f"tensor{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes())
    elif isinstance(part, np.generic):
        _update(digest, part.item())
    elif isinstance(part, np.ndarray):
        _update(digest, torch.from_numpy(np.ascontiguousarray(part)))
    elif isinstance(part, Mapping):
        for name, value in part.items():
            digest.update(str(name).encode())
            _update(digest, value)
    elif isinstance(part, (list, tuple)):
        digest.update(f"seq{len(part)}".encode())
        for value in part:
            _update(digest, value)
    elif isinstance(part, (str, int, float, bool)) or part is None:
        digest.update(json.dumps(part).encode())
    elif dataclasses.is_dataclass(part) and not isinstance(part, type):  # a schedule: its class and fields
        digest.update(type(part).__qualname__.encode())
        _update(digest, dataclasses.asdict(part))
    elif isinstance(part, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        _update(digest, list(as_tensors(part)))
    else:
        raise TypeError(f"cannot key an artefact on {type(part).__name__} {part!r}: pass models, data, tensors, "
                        "dataclasses or plain values (str, int, float, bool, None, lists, dicts)")


def _paths(store: Path, name: str, key: str) -> tuple[Path, Path]:
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"artefact name {name!r} must be a plain file name (letters, digits, '-', '_', '.')")
    stem = f"{name}-{key[:12]}"  # one file per inputs: a digits and an MNIST-1D run of one function coexist
    return Path(store) / f"{stem}.json", Path(store) / f"{stem}.pt"


def rows(name: str, compute: Callable[[], list[dict]], *, inputs: tuple, options: Mapping | None = None,
         live: bool = False, store: str | Path | None = None) -> list[dict]:
    """The rows ``compute()`` returns, read from the shipped artefact ``name`` when one was made from the same
    ``inputs`` and ``options`` (see the module's docstring for ``live`` and the modes). ``store``: a folder of
    your own instead of the shipped one: a cache, written on a miss."""
    options = dict(options or {})
    key = input_key(*inputs, options)
    json_path, _ = _paths(Path(store or STORE), name, key)

    def same(a: list[dict], b: list[dict]) -> bool:
        return json.loads(json.dumps(a)) == json.loads(json.dumps(b))

    return _get(name, key, options, live, store, compute, read=lambda record: record["rows"], write=None,
                same=same, path=json_path)


def model(name: str, build: Callable[[], nn.Module], train: Callable[[], nn.Module], *, inputs: tuple,
          options: Mapping | None = None, live: bool = False, store: str | Path | None = None) -> nn.Module:
    """The trained model ``train()`` returns, or ``build()`` loaded with the shipped state dict ``name`` made
    from the same ``inputs`` and ``options``; in eval mode on the CPU either way."""
    options = dict(options or {})
    key = input_key(*inputs, options)
    json_path, weights_path = _paths(Path(store or STORE), name, key)

    def read(record: dict) -> nn.Module:
        net = build()
        net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        return net.eval()

    def write(result: nn.Module) -> None:
        torch.save({k: v.detach().cpu().clone() for k, v in result.state_dict().items()}, weights_path)

    def same(a: nn.Module, b: nn.Module) -> bool:
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)

    return _get(name, key, options, live, store, lambda: train().cpu().eval(), read=read, write=write,
                same=same, path=json_path)


def _get(name, key, options, live, store, compute, *, read, write, same, path: Path):
    if live:
        return compute()
    current = mode()
    record = json.loads(path.read_text()) if path.exists() else None
    if record is not None and record.get("key") == key:
        if current != "verify":
            return read(record)
        shipped, again = read(record), compute()
        if not same(shipped, again):
            raise ArtefactMismatch(f"artefact {path.name}: recomputed with kernels {kernels()} it differs from "
                                   f"the shipped one (made with {record.get('kernels')})")
        return shipped
    own_cache = store is not None and Path(store).resolve() != STORE.resolve()
    if current in ("require", "verify") and not own_cache:
        raise LookupError(f"artefact {name!r} for these inputs ({path.name}) is not shipped (weights, data or "
                          f"options changed since it was made?); make it: python -m pruneviz.artefacts make "
                          f"<the notebook that computes it> (PRUNEVIZ_ARTEFACTS={current})")
    result = compute()
    if current == "write" or own_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        if write is not None:
            write(result)
        stored = {"name": name, "key": key, "options": options, "kernels": kernels()}
        if isinstance(result, list):
            stored["rows"] = json.loads(json.dumps(result))
        path.write_text(json.dumps(stored, indent=1) + "\n")
        return read(stored)  # what a reader gets: the JSON round trip of rows, a fresh module for a model
    warnings.warn(f"{name}: no shipped result for these inputs, so it was computed on this machine; its last "
                  f"digits may differ from the text", NotShipped, stacklevel=3)
    return result


def table(function: Callable[..., "pd.DataFrame"], *args: Any, live: bool = False, **kwargs: Any) -> "pd.DataFrame":
    """``function(*args, **kwargs)``, a DataFrame that needs training (a schedule sweep, a fine-tuning table),
    read from the shipped artefact made from the same arguments: the one-line way for a notebook to follow the
    rule, ``shipped = artefacts.table(schedule_sweep, model, [0.9], train, test, budget=69)``. Models, data,
    tensors and plain values are the arguments a key can be taken of; anything else is refused."""
    import pandas as pd

    name = getattr(function, "__name__", None)
    if name is None or name == "<lambda>":
        raise TypeError(f"artefacts.table needs a named function (its name names the artefact), got {function!r}")
    inputs = (list(args), dict(sorted(kwargs.items())))
    found = rows(name, lambda: function(*args, **kwargs).to_dict("records"), inputs=inputs,
                 options={"function": f"{function.__module__}.{function.__qualname__}"}, live=live)
    return pd.DataFrame(found)


def kernel_environment() -> dict[str, str]:
    """This process's environment with :data:`KERNELS` set: what the artefacts were made with."""
    return {**os.environ, **KERNELS}


def can_run_recorded_kernels() -> bool:
    """Whether this CPU can run :data:`KERNELS` (an x86 CPU with AVX2); ARM and older CPUs cannot."""
    import subprocess
    import sys

    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", probe], env=kernel_environment(), capture_output=True, text=True)
    return out.returncode == 0 and out.stdout.strip() == KERNELS["ATEN_CPU_CAPABILITY"].upper()


def _execute(notebooks: list[str], how: str) -> None:
    """Execute each notebook with the recorded kernels in mode ``how``: ``write`` stores its artefacts and its
    outputs (in place), ``verify`` recomputes them and compares (outputs discarded)."""
    import subprocess
    import sys

    if not can_run_recorded_kernels():
        raise SystemExit(f"this CPU cannot run the recorded kernels {KERNELS}: artefacts are made on an x86 CPU "
                         "with AVX2 (or newer)")
    env = {**kernel_environment(), "PRUNEVIZ_ARTEFACTS": how}
    for notebook in notebooks:
        if not Path(notebook).is_file():
            raise SystemExit(f"no notebook at {notebook!r}")
        command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute"]
        command += ["--inplace"] if how == "write" else ["--stdout"]
        print(f"{how}: {notebook} with {KERNELS}", flush=True)
        subprocess.run(command + [notebook], env=env, check=True,
                       stdout=subprocess.DEVNULL if how == "verify" else None)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pruneviz.artefacts",
                                     description="Make or verify the shipped results of notebooks that train.")
    parser.add_argument("command", choices=["make", "verify", "list"])
    parser.add_argument("notebooks", nargs="*", help="notebooks to execute (make: artefacts and outputs written)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for path in sorted(STORE.glob("*.json")):
            record = json.loads(path.read_text())
            print(f"{record.get('name', path.stem)}: kernels {record.get('kernels')}")
        return
    if not args.notebooks:
        parser.error(f"{args.command} needs the notebooks to execute, e.g. notebooks/03_scaling.ipynb")
    _execute(args.notebooks, "write" if args.command == "make" else "verify")


if __name__ == "__main__":
    main()

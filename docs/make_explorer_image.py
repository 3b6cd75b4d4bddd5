"""Draw docs/images/explorer.png: what the explorer shows for digits-cnn at 70 % global magnitude sparsity.

The same widget the notebooks show, drawn on an Agg canvas and saved: python docs/make_explorer_image.py
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

import pruneviz  # noqa: E402
from pruneviz.widgets import explore  # noqa: E402

OUT = Path(__file__).parent / "images" / "explorer.png"


def main() -> None:
    torch.manual_seed(0)
    model = pruneviz.zoo.load("digits-cnn", device="cpu")
    explorer = explore(model, figure="agg", layer="conv3", scope="global")
    explorer.sparsity.value = 0.7
    explorer.figure.draw(full=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    explorer.figure.figure.savefig(OUT, dpi=110)
    print(f"wrote {OUT}: {explorer.readout_text()}")


if __name__ == "__main__":
    main()

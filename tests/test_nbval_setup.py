"""notebooks/conftest.py and sanitize.cfg: nbval accepts, run after run, what Jupyter shows for the outputs that
vary or that nbval alone handles differently (trailing ';', Output widgets, tqdm on stderr, warnings)."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

CELLS = [
    # a trailing ';' hides the value in Jupyter; nbval alone would show Text(...)
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.title('x');",
    # output inside an Output widget belongs to the widget, in the stored notebook and under nbval
    "import ipywidgets as w\nout = w.Output()\nslider = w.FloatSlider(value=0.5)\n"
    "def show(change=None):\n    with out:\n        out.clear_output(wait=True)\n"
    "        print('value', slider.value)\n        plt.plot([0, slider.value]); plt.show()\n"
    "slider.observe(show, 'value')\nshow()\nw.VBox([slider, out])",
    "slider.value = 0.75\nprint('moved to', slider.value)",
    # a text progress bar on stderr: elapsed time and rate vary
    "import time\nfrom tqdm.std import tqdm\nfor _ in tqdm(range(3), desc='steps'):\n    time.sleep(0.01)",
    # a warning names the kernel's temporary cell file
    "import warnings\nwarnings.warn('a warning from a cell')",
]


def test_nbval_accepts_a_freshly_executed_notebook(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = [cell.outputs for cell in nb.cells]
    assert all(o.output_type != "execute_result" for o in outputs[0]), "the ';' hid the value when executed"
    assert not any("value" in o.get("text", "") for cell in outputs[1:3] for o in cell), "captured by the widget"
    assert any(o.get("name") == "stderr" for o in outputs[3]) and any(o.get("name") == "stderr" for o in outputs[4])
    nbformat.write(nb, tmp_path / "probe.ipynb")

    shutil.copy(NOTEBOOKS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
                          "--nbval-sanitize-with", str(NOTEBOOKS / "sanitize.cfg"), "probe.ipynb"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"{len(CELLS)} passed" in run.stdout

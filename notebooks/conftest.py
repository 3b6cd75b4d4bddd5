"""nbval setup for the notebooks folder (see notebooks/README.md for the authors' conventions).

Three things, each making nbval see a cell the way Jupyter (and nbclient, which executed the stored notebook) did:

- notebooks/student/ is generated with no outputs: nbval has nothing to compare there, and
  tests/test_coursework.py executes those notebooks itself.
- nbval 0.10+ runs cells with ``store_history=False``, and IPython then ignores a trailing ``;``
  (computationalmodelling/nbval#194, ipython/ipython#14162): ``plt.title("x");`` would print a ``Text(...)``
  that Jupyter does not show. Cells run with history here, as in Jupyter.
- Output produced inside an ``ipywidgets.Output`` (``with out: ...``) belongs to that widget: Jupyter and
  nbclient put it in the widget, not in the cell, but nbval knows nothing of widgets and would add it to the
  cell's outputs. Here such messages are dropped while an Output widget captures, as a front end would.
"""
import os

from nbval.kernel import RunningKernel

# a result that needs training must come from a shipped artefact here: a stale one is an error, not a live
# run whose last digits depend on this CPU (pruneviz/artefacts.py)
os.environ.setdefault("PRUNEVIZ_ARTEFACTS", "require")

collect_ignore = ["student"]

_CAPTURED = {"stream", "display_data", "execute_result", "error", "clear_output", "update_display_data"}


def _execute_cell_input(self, cell_input, allow_stdin=None):
    return self.kc.execute(cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False)


def _track_output_widgets(captures: dict[str, str], msg: dict) -> None:
    """Keep {comm id: msg_id it captures ('' when idle)} for every Output widget the kernel announced."""
    kind, content = msg["msg_type"], msg["content"]
    if kind == "comm_open" and content.get("target_name") == "jupyter.widget":
        state = content.get("data", {}).get("state", {})
        if state.get("_model_name") == "OutputModel":
            captures[content["comm_id"]] = state.get("msg_id", "")
    elif kind == "comm_msg" and content.get("comm_id") in captures:
        state = content.get("data", {}).get("state", {})
        if "msg_id" in state:
            captures[content["comm_id"]] = state["msg_id"]
    elif kind == "comm_close":
        captures.pop(content.get("comm_id"), None)


_get_message = RunningKernel.get_message


def _get_message_outside_output_widgets(self, stream, timeout=None):
    captures = self.__dict__.setdefault("_output_widget_captures", {})
    while True:
        msg = _get_message(self, stream, timeout=timeout)
        if stream != "iopub":
            return msg
        _track_output_widgets(captures, msg)
        parent = msg.get("parent_header", {}).get("msg_id")
        if msg["msg_type"] in _CAPTURED and parent and parent in captures.values():
            continue  # the front end would show it inside the widget
        return msg


RunningKernel.execute_cell_input = _execute_cell_input
RunningKernel.get_message = _get_message_outside_output_widgets

"""Lecture mode without a browser: what Voila is given (the browser side is tests/e2e/test_lecture.py)."""
import json
from pathlib import Path

import pytest

import jinja2

from pruneviz.lecture import _TEMPLATE_INDEX, HIDE_TAG, TEMPLATE, lecture_copy, voila_arguments, write_template


def notebook(cells):
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def code(source, tags=(), outputs=()):
    return {"cell_type": "code", "source": source, "metadata": {"tags": list(tags)}, "outputs": list(outputs),
            "execution_count": 3}


def test_lecture_copy_drops_tagged_cells_and_outputs(tmp_path):
    shown = code("explorer", outputs=[{"output_type": "stream", "name": "stdout", "text": "old"}])
    source = tmp_path / "10_x.ipynb"
    source.write_text(json.dumps(notebook([
        {"cell_type": "markdown", "source": "# Title", "metadata": {}},
        shown, code("explorer.sparsity.value = 0.9", tags=[HIDE_TAG]),
        {"cell_type": "markdown", "source": "## Exercise", "metadata": {"tags": [HIDE_TAG, "other"]}}])))
    before = source.read_text()
    (tmp_path / "out").mkdir()
    copy = lecture_copy(source, tmp_path / "out")
    cells = json.loads(copy.read_text())["cells"]
    assert [c["source"] for c in cells] == ["# Title", "explorer"]
    assert cells[1]["outputs"] == [] and cells[1]["execution_count"] is None
    assert source.read_text() == before and copy.name == source.name


def test_lecture_copy_names_a_missing_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebook at .*missing.ipynb"):
        lecture_copy(tmp_path / "missing.ipynb", tmp_path)


def arguments(**changes):
    given = dict(port=1, ip="127.0.0.1", progressive=False)
    return voila_arguments(Path("a.ipynb"), **{**given, **changes})


def option(args, name):
    """The value of ``--name=value`` in a command line (None when absent)."""
    found = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return found[-1] if found else None


def test_preheated_or_progressive_never_both():
    preheated, progressive = arguments(), arguments(progressive=True)
    assert option(preheated, "preheat_kernel") == "True" and not any("progressive" in a for a in preheated[1:])
    assert option(progressive, "progressive_rendering") == "True" and not any("preheat" in a for a in progressive[1:])
    assert option(preheated, "strip_sources") == "True" and option(preheated, "template") == TEMPLATE


def test_a_pool_of_kernels_waits_for_the_visitors_after_the_first():
    """The first visitor takes one preheated kernel; a second one (a projector reload, a student) must find
    another ready: two by default, refilled soon rather than after a minute."""
    args = arguments()
    assert int(option(args, "pool_size")) >= 2
    assert float(option(args, "VoilaKernelManager.fill_delay")) <= 10
    assert option(arguments(pool_size=4, refill_delay=0), "pool_size") == "4"
    assert option(arguments(pool_size=4, refill_delay=0), "VoilaKernelManager.fill_delay") == "0"


def test_idle_kernels_whose_page_is_gone_are_culled_unless_asked_not_to():
    args = arguments(cull_idle=600)
    assert option(args, "MappingKernelManager.cull_idle_timeout") == "600"
    assert option(args, "MappingKernelManager.cull_connected") in (None, "False")  # an open page keeps its kernel
    assert int(option(args, "MappingKernelManager.cull_interval")) <= 600
    never = arguments(cull_idle=0)
    assert option(never, "MappingKernelManager.cull_idle_timeout") is None


@pytest.mark.parametrize("changes, words", [
    (dict(pool_size=0), "pool_size=0"), (dict(refill_delay=-1), "refill_delay=-1"), (dict(cull_idle=-5), "cull_idle=-5")])
def test_bad_pool_settings_name_what_was_given(changes, words):
    with pytest.raises(ValueError, match=words):
        arguments(**changes)


def test_command_line_rejects_a_bad_pool_before_starting_anything(tmp_path, capsys):
    from pruneviz.lecture import main
    source = tmp_path / "a.ipynb"
    source.write_text(json.dumps(notebook([code("1")])))
    with pytest.raises(SystemExit):
        main([str(source), "--pool-size", "0", "--no-browser"])
    assert "pool_size=0" in capsys.readouterr().err


def render_with_parent(parent_css: str) -> str:
    """Our template over a stand-in for Voila's "lab" template whose CSS block holds ``parent_css``."""
    loader = jinja2.DictLoader({
        "lab/index.html.j2": "<head>{% block notebook_css %}" + parent_css + "{% endblock notebook_css %}</head>",
        "index.html.j2": _TEMPLATE_INDEX})
    return jinja2.Environment(loader=loader, autoescape=True).get_template("index.html.j2").render()


def test_template_drops_stylesheets_from_other_hosts_and_keeps_local_ones():
    page = render_with_parent(
        '<script src="static/voila-style.js"></script>\n'
        '  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@^5/css/all.min.css" />\n'
        '  <link rel="stylesheet" href="http://example.org/x.css" type="text/css" />\n'
        '<link rel="stylesheet" href="static/local.css">\n<style>.a{}</style>')
    assert "cdn.jsdelivr.net" not in page and "example.org" not in page
    for kept in ('<script src="static/voila-style.js"></script>', '<link rel="stylesheet" href="static/local.css">',
                 "<style>.a{}</style>"):
        assert kept in page


def test_template_is_found_by_voila_on_top_of_lab(tmp_path, monkeypatch):
    paths = pytest.importorskip("voila.paths", reason="lecture mode needs voila")
    monkeypatch.setenv("JUPYTER_PATH", str(write_template(tmp_path)))
    found = paths.collect_template_paths(["voila", "nbconvert"], TEMPLATE, prune=True)
    assert Path(found[0]) == tmp_path / "share" / "voila" / "templates" / TEMPLATE
    assert any(Path(p).parts[-2:] == ("templates", "lab") for p in found[1:3]), found[:4]
    # the block it filters is where Voila's lab template puts its CDN links (a Voila upgrade that moves them
    # would show here, and in the browser test's record of requests)
    lab = next(Path(p) for p in found if Path(p).parts[-3:] == ("voila", "templates", "lab"))
    source = (lab / "index.html.j2").read_text()
    block = source[source.index("{%- block notebook_css -%}"):source.index("{%- endblock notebook_css -%}")]
    remote = [line for line in source.splitlines() if "<link" in line and 'href="http' in line]
    assert remote and all(line in block for line in remote), remote

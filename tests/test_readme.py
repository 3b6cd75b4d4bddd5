"""The README's (and docs/ pages') Python code blocks run as written, each in a fresh namespace (as a reader
pastes one into a new session), and show what they say they show; the set-up pages' shell commands work from a
fresh clone (below).

Expected output is written as comments that start with ``# ->`` right after (or at the end of) the statement
that produces it, one ``# ->`` per line of output; it is compared with what the statement printed, or with the
repr of its value when it is an expression (as the REPL shows it), runs of whitespace counting as one space.
"""
from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import shlex
import shutil
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pruneviz.notebooks import manifest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXPECTED = re.compile(r"#\s?->\s?(.*)$")


@dataclass
class Block:
    code: str
    line: int  # where the code starts in its page
    heading: str
    page: str = "README.md"

    @property
    def id(self) -> str:
        return f"{Path(self.page).stem}-{re.sub(r'[^a-z0-9]+', '-', self.heading.lower()).strip('-')}-line{self.line}"


def python_blocks(text: str, page: str = "README.md") -> list[Block]:
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[:match.start()]
        headings = re.findall(r"^#+ (.+)$", before, re.MULTILINE)
        blocks.append(Block(match.group(1), before.count("\n") + 2, headings[-1] if headings else "top", page))
    return blocks


def expected_outputs(code: str, statements: list[ast.stmt]) -> dict[int, str]:
    """{statement index: the output its ``# ->`` comments show}: on its last line, then on the comment-only
    lines right after it."""
    lines = code.splitlines()
    found = {}
    for i, statement in enumerate(statements):
        shown = []
        inline = EXPECTED.search(lines[statement.end_lineno - 1][statement.end_col_offset:])
        if inline:
            shown.append(inline.group(1))
        for line in lines[statement.end_lineno:]:
            stripped = line.strip()
            if not stripped.startswith("#") or not EXPECTED.match(stripped):
                break
            shown.append(EXPECTED.match(stripped).group(1))
        if shown:
            found[i] = "\n".join(shown)
    return found


def normalized(text: str) -> str:
    return " ".join(text.split())


def run_block(block: Block) -> None:
    """Run the block statement by statement, checking each shown output; fail naming the README line."""
    tree = ast.parse(block.code)
    expected = expected_outputs(block.code, tree.body)
    namespace: dict = {"__name__": "__readme__"}
    for i, statement in enumerate(tree.body):
        where = f"{block.page} line {block.line + statement.lineno - 1}"
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                if isinstance(statement, ast.Expr):
                    value = eval(compile(ast.Expression(statement.value), where, "eval"), namespace)
                    if value is not None:
                        print(repr(value))
                else:
                    exec(compile(ast.Module([statement], []), where, "exec"), namespace)
        except Exception as error:
            pytest.fail(f"{where}: `{ast.get_source_segment(block.code, statement)}` raised "
                        f"{type(error).__name__}: {error}")
        if i in expected and normalized(out.getvalue()) != normalized(expected[i]):
            pytest.fail(f"{where}: `{ast.get_source_segment(block.code, statement)}` shows\n{expected[i]}\n"
                        f"but gives\n{out.getvalue() or '(nothing)'}")


DOCS = sorted((README.parent / "docs").glob("*.md"))
README_BLOCKS = python_blocks(README.read_text())
BLOCKS = README_BLOCKS + [b for page in DOCS for b in python_blocks(page.read_text(), f"docs/{page.name}")]


def test_readme_has_python_blocks_with_outputs():
    assert README_BLOCKS, "README.md has no ```python block: the API tour is missing"
    assert any(expected_outputs(b.code, ast.parse(b.code).body) for b in README_BLOCKS), \
        "no README block shows its output with `# ->` comments"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs_as_written(block):
    run_block(block)


def test_checker_catches_wrong_output_and_errors():
    """The checker itself: a wrong shown output and a failing statement are both reported with their line."""
    with pytest.raises(pytest.fail.Exception, match="line 11.*shows"):
        run_block(Block("x = 2\nprint(x + 1)  # -> 4\n", 10, "t"))
    with pytest.raises(pytest.fail.Exception, match=r"line 12.*NameError"):
        run_block(Block("x = 2\ntorch.zeros(1)\n", 11, "t"))
    run_block(Block("print('a  b')\n# -> a b\n[1, 2]\n# -> [1,\n# ->  2]\n", 1, "t"))


# --- the set-up commands -------------------------------------------------------------------------------------
# The shell commands of the set-up pages run as a reader types them, from a fresh copy of the clone, in a
# throwaway virtual environment: those that need no network are run (the venv reuses this environment's packages
# through a path entry and pip is kept off the network, so nothing is downloaded; about a minute), the others are
# checked (against .ci/run, environment.yml, the files they name). A command the test does not know fails it:
# whoever adds one says here how it is tested.

ROOT = README.parent
SETUP_PAGES = ("README.md", "docs/install.md", "docs/lecture.md")
CI = ROOT / ".ci" / "run"
BASH = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CLONE = ("pyproject.toml", "setup.py", "MANIFEST.in", "LICENSE", "README.md", "pruneviz", "notebooks", "environment.yml")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints", "files")


def shell_commands(text: str) -> list[list[str]]:
    """The commands of the page's ```bash blocks, in order, each as its words (comments dropped, ``&&`` split)."""
    commands = []
    for block in BASH.findall(text):
        for line in block.replace("\\\n", " ").splitlines():  # continued lines joined
            words = shlex.split(line, comments=True)
            while words:
                cut = words.index("&&") if "&&" in words else len(words)
                commands.append(words[:cut])
                words = words[cut + 1:]
    return commands


def without_noise(words: list[str]) -> list[str]:
    """``python -m pip install -q X`` as ``pip install X``: how a reader and .ci/run may differ."""
    if words[:3] == ["python", "-m", "pip"]:
        words = words[2:]
    return [w for w in words if w != "-q"]


def ci_commands() -> list[list[str]]:
    return [without_noise(c) for c in shell_commands("```bash\n" + CI.read_text() + "```\n")]


def torch_pin(commands: list[list[str]]) -> str | None:
    pins = [w for c in commands if c[:2] == ["pip", "install"] for w in c[2:] if w.startswith("torch==")]
    return pins[0] if pins else None


PIP_NAME = re.compile(r"^pruneviz(\[[^\]]*\])?\s*((==|>=|<=|~=|!=|<|>).*)?$")


def unresolvable_installs(text: str) -> list[str]:
    """``pip install`` commands (in code blocks or inline) that ask the package index for pruneviz by name, which
    only a clone or a built wheel can give (pruneviz is not on PyPI); a direct URL (``pruneviz @ git+...``) or a
    path (``-e .``, ``dist/*.whl``) is fine."""
    found = []
    for match in re.finditer(r"pip install ([^`\n]*)", text):
        try:
            words = shlex.split(match.group(1), comments=True)
        except ValueError:  # an unbalanced quote: the prose around an inline command
            words = match.group(1).split()
        words = words[:words.index("&&")] if "&&" in words else words
        if any(PIP_NAME.match(w) for w in words if not w.startswith("-")):
            found.append(match.group(0).strip())
    return found


def test_no_page_installs_pruneviz_from_the_package_index():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("*/README.md"))]
    bad = {str(p.relative_to(ROOT)): unresolvable_installs(p.read_text()) for p in pages}
    assert not {p: c for p, c in bad.items() if c}, (
        f"`pip install pruneviz...` cannot resolve from a clone (pruneviz is not on PyPI): {bad}; write "
        "`pip install -e \".[extra]\"` or the wheel's path")


def test_checker_catches_an_install_by_name():
    assert unresolvable_installs('`pip install pruneviz`, `pip install "pruneviz[lecture]"`, pip install '
                                 "'pruneviz==0.1.0'") == ["pip install pruneviz", 'pip install "pruneviz[lecture]"',
                                                          "pip install 'pruneviz==0.1.0'"]
    assert unresolvable_installs('`pip install -e ".[lecture]"` and `pip install dist/pruneviz-0.1.0-py3-none-any.whl`'
                                 ' and `!pip install "pruneviz @ git+https://github.com/<you>/pruneviz"`') == []


def how_to_test(words: list[str], made: set[str]) -> str | None:
    """A shell line that runs the command, or checks it; None for a command this test does not know.
    ``made``: the folders an earlier ``copy`` command made."""
    words = without_noise(words)
    line = shlex.join(words)
    if words in (["python3", "-m", "venv", ".venv"], ["source", ".venv/bin/activate"]):
        return line + (" && add_dependencies" if words[0] == "python3" else "")
    if words[:2] == ["pip", "install"] and "--index-url" in words:  # needs the internet: the index is PyTorch's CPU one
        index = words[words.index("--index-url") + 1]
        return f"test {shlex.quote(index)} = {CPU_INDEX}" if words[2:3] == ["torch"] else None
    if words[:2] == ["pip", "install"] and (words[2:3] == ["-e"] or all(w.startswith(("torch==", "dist/"))
                                                                          for w in words[2:])):
        return line
    if words[:2] == ["pip", "wheel"] or words[:4] == ["python", "-m", "pruneviz.notebooks", "copy"]:
        if words[:2] == ["pip", "wheel"]:
            return line
        made.add(words[-1])
        return line
    if words[:2] == ["jupyter", "lab"] and len(words) == 3:  # a server: the folder it opens must hold the notebooks
        return f"ls {shlex.quote(words[2])}/00_*.ipynb >/dev/null" if words[2] in made else None
    if words == ["pytest"]:  # the whole suite: this very test is part of it. .ci/run runs the same command.
        return "true"
    if words[:3] == ["python", "-m", "pruneviz.lecture"] and len(words) == 4:  # tests/e2e/test_lecture.py serves it
        return f"test -f {shlex.quote(words[3])}"
    return None


def setup_script(pages: tuple[str, ...] = SETUP_PAGES) -> tuple[str, list[list[str]]]:
    """The pages' commands, in order, as one bash script (each run, or checked in its place), and the commands.
    A reader follows the README, then the pages it links, in one clone and one venv: a command already run is
    not run again (a second ``pip install -e .`` changes nothing; a second ``copy`` into the same folder would
    rightly refuse to overwrite)."""
    lines, made, commands = [], set(), []
    for page in pages:
        for words in shell_commands((ROOT / page).read_text()):
            line = how_to_test(words, made)
            assert line is not None, f"{page}: `{shlex.join(words)}`: tests/test_readme.py does not know how to test it"
            if words in commands:
                continue
            commands.append(words)
            lines.append(f"echo \"[$SECONDS s] {page} $ {shlex.join(words)}\"; {line}")
    return "\n".join(lines), commands


def test_checker_knows_its_commands():
    made: set[str] = set()
    assert how_to_test(["python", "-m", "pruneviz.notebooks", "copy", "x"], made) and made == {"x"}
    assert how_to_test(["jupyter", "lab", "x"], made) and how_to_test(["jupyter", "lab", "y"], made) is None
    assert how_to_test(["pip", "install", "torch", "--index-url", "https://example.org"], made) == \
        f"test https://example.org = {CPU_INDEX}"
    assert how_to_test(["pip", "install", "numpy"], made) is None  # from the network: not run, not checked
    assert how_to_test(["curl", "https://example.org"], made) is None


def pyproject_extras() -> set[str]:
    section = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
    return set(re.findall(r"(?m)^(\w+) = \[", section))


def test_setup_extras_exist():
    """pip only warns about an extra the project does not have (``.[lectur]``) and goes on without it."""
    asked = [re.findall(r"\[([^\]]*)\]", c[3]) for page in SETUP_PAGES
             for c in shell_commands((ROOT / page).read_text()) if c[:3] == ["pip", "install", "-e"]]
    extras = {extra.strip() for found in asked for group in found for extra in group.split(",")}
    assert extras and extras <= pyproject_extras(), f"extras the project lacks: {extras - pyproject_extras()}"


def test_readme_test_command_is_the_one_ci_runs():
    """.ci/run: a venv, the CPU torch by the README's pin, then the README's test command."""
    ci = ci_commands()
    readme = shell_commands(README.read_text())
    assert ["python3", "-m", "venv", ".venv"] in ci and ["python3", "-m", "venv", ".venv"] in readme
    pins = {page: torch_pin(shell_commands((ROOT / page).read_text())) for page in ("docs/install.md",)}
    sentence = re.search(r"`pip install (torch==[^`]+)`", README.read_text())
    assert sentence and set(pins.values()) == {sentence.group(1)} == {torch_pin(ci)}, (pins, sentence, torch_pin(ci))
    test_command = [["pip", "install", "-e", ".[test]"], ["pytest"]]
    runs = [i for i in range(len(ci)) if ci[i:i + 2] == test_command]
    assert runs, f".ci/run never runs the README's test command {test_command}: {ci}"
    assert any(readme[i:i + 2] == test_command for i in range(len(readme))), "the README has no test command"
    assert ci.index(["pip", "install", torch_pin(ci)]) < runs[0]  # torch's CPU build before the kit
    # after it, only more pytest (the second pass with other kernels: notebooks/README.md)
    assert all("pytest" in command for command in ci[runs[0] + 2:]), ci[runs[0] + 2:]


def test_conda_environment_is_the_clone_with_its_tests():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"(?m)^name: pruneviz$", text)
    extras = re.search(r"(?m)^\s+- -e \.(\[(\w+)\])?$", text)
    assert extras, "environment.yml does not install the clone with pip -e"
    assert "conda env create -f environment.yml && conda activate pruneviz" in (ROOT / "docs/install.md").read_text()
    assert extras.group(2) in (None, *pyproject_extras())


@pytest.fixture(scope="module")
def dependencies_pth() -> str:
    """A .pth line list that gives a venv this environment's packages (torch, voila, ...), so nothing downloads."""
    return "\n".join(site.getsitepackages()) + "\n"


def test_setup_commands_run_from_a_fresh_clone(tmp_path, dependencies_pth):
    clone = tmp_path / "clone"
    for name in CLONE:
        origin = ROOT / name
        (shutil.copytree(origin, clone / name, ignore=IGNORE) if origin.is_dir() else
         (clone.mkdir(exist_ok=True), shutil.copy2(origin, clone / name)))
    script, commands = setup_script()
    bin_dir = tmp_path / "bin"  # `python3` is this Python (for the .pth to fit), and nothing else of this venv
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} \"$@\"\n")
    (bin_dir / "python3").chmod(0o755)
    # Offline (nothing downloads) and never into this environment: pip runs only inside the throwaway venv. The
    # venv's own setuptools (65, from ensurepip) makes way for this environment's: .ci/run gets a new one online.
    prelude = f"""set -euo pipefail
export PATH={shlex.quote(str(bin_dir))}:/usr/bin:/bin
export PIP_NO_INDEX=1 PIP_NO_BUILD_ISOLATION=0 PIP_REQUIRE_VIRTUALENV=1 PIP_DISABLE_PIP_VERSION_CHECK=1
add_dependencies() {{
    .venv/bin/python -c 'import sysconfig, sys; open(sysconfig.get_paths()["purelib"] + "/zz_dependencies.pth", "w").write(sys.stdin.read())' <<'PTH'
{dependencies_pth}PTH
    .venv/bin/python -m pip uninstall -q -y setuptools
}}
"""
    before = {p: p.read_bytes() for p in (clone / "notebooks").rglob("*.ipynb")}
    result = subprocess.run(["bash", "-c", prelude + script], cwd=clone, capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")})
    assert result.returncode == 0, f"a set-up command failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert {p: p.read_bytes() for p in (clone / "notebooks").rglob("*.ipynb")} == before, "notebooks/ was changed"
    shipped = manifest.shipped(clone / "notebooks")
    for copy in (c for c in commands if c[:4] == ["python", "-m", "pruneviz.notebooks", "copy"]):
        folder = clone / copy[-1]
        expected = ({Path(*f.parts[1:]): f for f in shipped if f.parts[0] == "student"} if "--student" in copy
                    else {f: f for f in shipped})
        assert {p.relative_to(folder) for p in folder.rglob("*.ipynb")} == set(expected), f"{shlex.join(copy)}"
        assert all((folder / a).read_bytes() == before[clone / "notebooks" / b] for a, b in expected.items())


def test_copy_refuses_a_folder_inside_the_originals(tmp_path, capsys):
    """The notebooks stay clean: a copy into notebooks/ (or below) would sit where the tests collect notebooks
    and git tracks them, so it is refused before anything is written; anywhere else is fine."""
    from pruneviz.notebooks import __main__ as cli
    from pruneviz.notebooks import copy, folder

    inside = folder() / "my-course"
    with pytest.raises(ValueError, match=r"my-course is inside .*copy them into a folder of your own"):
        copy(inside)
    assert not inside.exists()
    assert cli.main(["copy", str(folder())]) == 1
    assert "inside" in capsys.readouterr().err and not (folder() / "student" / "student").exists()
    written = copy(tmp_path / "my-course", student=True)
    assert written and all(p.parent == tmp_path / "my-course" for p in written)


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a page: lower case, punctuation dropped, spaces as hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"(?m)^#+ (.+)$", re.sub(r"(?ms)^```.*?^```", "", markdown))}


def test_links_between_the_pages_lead_somewhere():
    """The README's details moved to docs/: every relative link of the README and the docs pages (images
    included) points at a file that exists, and at a heading it has."""
    broken = []
    for page in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists() or (anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text())):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken

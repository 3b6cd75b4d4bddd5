"""The README's Python code blocks run as written, each in a fresh namespace (as a reader pastes one into a new
session), and show what they say they show.

Expected output is written as comments that start with ``# ->`` right after (or at the end of) the statement
that produces it, one ``# ->`` per line of output; it is compared with what the statement printed, or with the
repr of its value when it is an expression (as the REPL shows it), runs of whitespace counting as one space.
"""
from __future__ import annotations

import ast
import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXPECTED = re.compile(r"#\s?->\s?(.*)$")


@dataclass
class Block:
    code: str
    line: int  # where the code starts in README.md
    heading: str

    @property
    def id(self) -> str:
        return f"{re.sub(r'[^a-z0-9]+', '-', self.heading.lower()).strip('-')}-line{self.line}"


def python_blocks(text: str) -> list[Block]:
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[:match.start()]
        headings = re.findall(r"^#+ (.+)$", before, re.MULTILINE)
        blocks.append(Block(match.group(1), before.count("\n") + 2, headings[-1] if headings else "top"))
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
        where = f"README.md line {block.line + statement.lineno - 1}"
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


BLOCKS = python_blocks(README.read_text())


def test_readme_has_python_blocks_with_outputs():
    assert BLOCKS, "README.md has no ```python block: the API tour is missing"
    assert any(expected_outputs(b.code, ast.parse(b.code).body) for b in BLOCKS), \
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

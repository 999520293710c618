"""The docs are executed: every `$ cnnzoo ...` block in README.md and docs/*.md.

- A fenced block whose commands are followed by output is run in-process (the CLI's `main`, stdout
  and stderr captured, as through a pipe) and the output compared line by line (trailing spaces
  ignored; a line `...` in the docs stands for any number of lines).
- A block right after `<!-- illustration: DATE, MACHINE -->` shows a non-deterministic run
  (training, timings): it is not run, but each command must still parse (its verb and options
  exist).
- A block of commands without any output (a list of things to try) is parsed, not run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer

from cnnzoo.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ILLUSTRATION = re.compile(r"<!--\s*illustration:\s*[^,]+,.+-->")


@dataclass
class Shown:
    """One `$` line (possibly `a; b`) and the output shown under it."""

    argvs: list[list[str] | None]  # None: a command that is not cnnzoo (torchrun, python ...)
    text: str
    output: list[str] = field(default_factory=list)


@dataclass
class Block:
    page: str
    line: int
    illustration: bool
    commands: list[Shown]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return not self.illustration and any(c.output for c in self.commands)


def _split(command: str) -> list[list[str] | None]:
    """`cnnzoo a; cnnzoo b  # comment` -> [['a'], ['b']] (argv after `cnnzoo`)."""
    lex = shlex.shlex(command, posix=True, punctuation_chars=";")
    lex.whitespace_split = True
    lex.commenters = "#"
    parts: list[list[str]] = [[]]
    for tok in lex:
        if tok == ";":
            parts.append([])
        else:
            parts[-1].append(tok)
    return [p[1:] if p and p[0] == "cnnzoo" else None for p in parts if p]


def _blocks(page: Path) -> list[Block]:
    lines = page.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith("```"):
            i += 1
            continue
        indent = len(lines[i]) - len(lines[i].lstrip())  # a fence inside a list item
        start = i
        i += 1
        body = []
        while i < len(lines) and not lines[i].lstrip().startswith("```"):
            body.append(lines[i][indent:])
            i += 1
        i += 1
        if not any(b.startswith("$ cnnzoo") for b in body):
            continue
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        cmds: list[Shown] = []
        k = 0
        while k < len(body):
            if body[k].startswith("$ "):
                text = body[k][2:]
                while text.rstrip().endswith("\\") and k + 1 < len(body):
                    k += 1
                    text = text.rstrip()[:-1] + " " + body[k].strip()
                cmds.append(Shown(_split(text), text))
            elif cmds:
                cmds[-1].output.append(body[k])
            k += 1
        out.append(Block(str(page.relative_to(ROOT)), start + 1, bool(ILLUSTRATION.search(before)), cmds))
    return out


BLOCKS = [b for page in PAGES for b in _blocks(page)]


def test_fences_inside_list_items_are_read_too():
    assert any(b.id.startswith("docs/serve.md:") for b in BLOCKS)


def _matches(expected: list[str], got: list[str]) -> bool:
    """Line-by-line equality, where an expected `...` line matches any run of lines."""
    exp = [e.rstrip() for e in expected]
    act = [g.rstrip() for g in got]
    while exp and not exp[-1]:
        exp.pop()
    while act and not act[-1]:
        act.pop()

    def rec(i: int, j: int) -> bool:
        if i == len(exp):
            return j == len(act)
        if exp[i] == "...":
            return any(rec(i + 1, k) for k in range(j, len(act) + 1))
        return j < len(act) and exp[i] == act[j] and rec(i + 1, j + 1)

    return rec(0, 0)


def _parse(argv: list[str]) -> None:
    """Resolve the verb (and sub-verb) and parse the options, without running anything."""
    group = typer.main.get_command(app)
    ctx = group.make_context("cnnzoo", list(argv), resilient_parsing=False)
    name, cmd, rest = group.resolve_command(ctx, list(argv))  # the root takes no options before the verb
    while hasattr(cmd, "commands") and rest and rest[0] in cmd.commands:
        name, cmd, rest = rest[0], cmd.commands[rest[0]], rest[1:]
    cmd.make_context(name, rest, parent=ctx)


def test_the_docs_show_commands():
    assert len(BLOCKS) >= 15
    assert sum(b.runs for b in BLOCKS) >= 8  # most shown output is checked, not illustrated


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_every_shown_command_parses(block):
    for c in block.commands:
        for argv in c.argvs:
            if argv is not None:
                _parse(argv)


# Blocks that take tens of seconds on 2 busy cores (a 1202-layer net on the meta device); the
# same verbs run fast in the other blocks.
SLOW = ("resnet1202",)
RUNNABLE = [pytest.param(b, marks=pytest.mark.slow) if any(m in c.text for c in b.commands for m in SLOW)
            else b for b in BLOCKS if b.runs]


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: getattr(b, "id", None))
def test_shown_output_is_what_the_command_prints(block, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "80")  # through a pipe the CLI ignores it: tables are not wrapped
    monkeypatch.chdir(tmp_path)  # plots and files land in a scratch folder
    for c in block.commands:
        got: list[str] = []
        for argv in c.argvs:
            assert argv is not None, f"{block.id}: only cnnzoo commands can be checked: {c.text}"
            cap = cli(*argv)
            got += (cap.out + cap.err).splitlines()
        assert _matches(c.output, got), (
            f"{block.id}: `{c.text}` prints\n" + "\n".join(got)
            + "\n--- the docs show ---\n" + "\n".join(c.output))

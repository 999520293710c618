"""`cnnzoo ARGV` run in this process, for the `cli` fixture (conftest.py) and for fixtures wider
than one test, which cannot take capsys."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest


class CliResult(NamedTuple):
    """A finished command: its exit code (as `sys.exit` got it), stdout and stderr."""

    code: int | str | None
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(argv: list[object], capsys: pytest.CaptureFixture | None = None) -> CliResult:
    """Runs `cnnzoo.cli.main` on `argv` (each item str()-ed), catching the SystemExit it always
    ends with; out and err are what it printed (empty without `capsys`). The CLI turns every error
    into a message, so a traceback in its output is a failure."""
    from cnnzoo.cli import main

    if capsys is not None:
        capsys.readouterr()  # only this command's output
    with pytest.raises(SystemExit) as ex:
        main([str(a) for a in argv])
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    assert "Traceback" not in out + err, (out + err)[-2000:]
    return CliResult(ex.value.code, out, err)


def fill(argv: list[str], subs: dict[str, object]) -> list[str]:
    """A catalogue row's argv with its {placeholders} replaced (each value str()-ed)."""
    out = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, str(v))
        out.append(a)
    return out

"""The CLI's shape: every verb is in the light table, its --help teaches (examples that parse, flags
without placeholders), and start-up imports nothing heavy it does not need."""

from __future__ import annotations

import json
import pkgutil
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import cnnzoo.commands as commands
from cnnzoo.cli import app
from cnnzoo.commands._lazy import load_verb
from cnnzoo.commands._verbs import SUB_EXAMPLES, VERBS

SRC = Path(__file__).resolve().parents[1] / "src"


def _all_verbs() -> list[str]:
    out = []
    for name in VERBS:
        cmd = load_verb(name)
        out.append(name)
        out += [f"{name} {sub}" for sub in getattr(cmd, "commands", {})]
    return out


ALL = _all_verbs()


def test_every_commands_module_is_in_the_verb_table():
    modules = {m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")}
    listed = {v.module for v in VERBS.values()}
    assert modules == listed, f"commands/*.py missing from commands/_verbs.py: {sorted(modules - listed)}; " \
                              f"table rows without a module: {sorted(listed - modules)}"


@pytest.mark.parametrize("verb", ALL)
def test_help_ends_with_examples_and_reads_as_flags(verb, cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    r = cli(*verb.split(), "--help")
    assert r.code == 0
    text = r.out
    assert "Examples:" in text, f"`cnnzoo {verb} --help` shows no examples"
    examples = [ln.strip()[2:] for ln in text.split("Examples:")[1].splitlines() if ln.strip().startswith("$ ")]
    assert 2 <= len(examples) <= 3 or (verb in VERBS and len(examples) >= 2)
    assert "<bool>" not in text
    usage = next(ln for ln in text.splitlines() if "Usage:" in ln)
    assert "{" not in usage and "}" not in usage, usage


@pytest.mark.parametrize("verb", ALL)
def test_examples_parse(verb):
    examples = VERBS[verb].examples if verb in VERBS else SUB_EXAMPLES[verb]
    group = typer.main.get_command(app)
    for ex in examples:
        argv = shlex.split(ex)[1:]
        ctx = group.make_context("cnnzoo", list(argv))
        name, cmd, rest = group.resolve_command(ctx, list(argv))
        while hasattr(cmd, "commands") and rest and rest[0] in cmd.commands:
            name, cmd, rest = rest[0], cmd.commands[rest[0]], rest[1:]
        cmd.make_context(name, rest, parent=ctx)  # raises a usage error on a wrong option


def test_root_help_lists_every_verb_without_importing_torch():
    code = ("import sys; from cnnzoo.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'numpy', 'matplotlib', 'cnnzoo.registry') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC), "COLUMNS": "200", "PATH": "/usr/bin:/bin"}).stdout
    assert "HEAVY []" in out
    for verb in VERBS:
        assert verb in out


def test_version(cli):
    from cnnzoo import __version__

    r = cli("--version")
    assert r.code == 0 and r.out.strip() == f"cnnzoo {__version__}"


def test_unknown_family_names_the_families(cli):
    r = cli("list", "--family", "resnets")
    assert r.code == 2
    err = r.err
    assert "did you mean 'resnet'" in err and "vgg" in err and "lenet" in err


@pytest.mark.parametrize("argv", [["info", "lenet5", "--json"], ["info", "lenet5", "--format", "json"]])
def test_json_is_an_alias_of_format_json(argv, cli):
    assert cli(*argv).json()["name"] == "lenet5"


def test_parameter_count_cache_is_current():
    """commands/param_counts.json feeds `cnnzoo list`; regenerate with scripts/gen_param_counts.py."""
    from cnnzoo.commands.models import PARAM_COUNTS, count_params
    from cnnzoo.registry import get_entry, list_models

    cached = json.loads(PARAM_COUNTS.read_text())
    # the zoo's own models (other tests may register test models in this process)
    zoo = [n for n in list_models() if get_entry(n).builder.__module__.startswith("cnnzoo.models")]
    assert sorted(cached) == zoo, "run scripts/gen_param_counts.py"
    stale = {n: (cached[n], c) for n in zoo if (c := count_params(n)) != cached[n]}
    assert not stale, f"stale counts (cached, actual): {stale}; run scripts/gen_param_counts.py"


def test_output_through_a_pipe_is_not_wrapped(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    lines = cli("list", "vgg1*").out.splitlines()
    assert any("VGG configuration A with BatchNorm (torchvision-compatible)" in ln for ln in lines)
    assert max(map(len, lines)) > 80


def test_json_names_the_unit_of_accuracies_and_errors(cli):
    """One vocabulary: JSON accuracies and errors are percent, and the key says so."""
    from cnnzoo.registry import model_info
    from cnnzoo.results import pct, scores

    published = cli("info", "lenet5", "--format", "json").json()["published"][0]
    assert published["top1_err_pct"] == 0.95 and "top1_err" not in published
    assert model_info("lenet5")["published"][0] == published  # the Python API: the same keys
    assert pct(0.9712) == 97.12 and pct(None) is None
    assert scores("test", 0.9712, 0.999) == {"test_acc_pct": 97.12, "test_top1_err_pct": 2.88,
                                             "test_top5_err_pct": 0.1}


# -- one way to declare a verb, --format/--json, bench as a group (issue 25) ----------------------
def _command(path: str):
    verb, *subs = path.split()
    cmd = load_verb(verb)
    for s in subs:
        cmd = cmd.commands[s]
    return cmd


def _opt(cmd, flag: str):
    return next((p for p in cmd.params if flag in getattr(p, "opts", ())), None)


@pytest.mark.parametrize("verb", ALL)
def test_every_verb_is_declared_the_one_way_without_patched_click_internals(verb):
    from cnnzoo.commands._lazy import Verb, VerbGroup

    cmd = _command(verb)
    assert isinstance(cmd, (Verb, VerbGroup)), f"`{verb}`: add it with commands._lazy.verb()/group()"
    assert "get_params" not in vars(cmd) and not any("_usage_display_name" in vars(p) for p in cmd.params)


@pytest.mark.parametrize("verb", [v for v in ALL if not hasattr(_command(v), "commands") and v != "serve"])
def test_format_everywhere_and_json_is_its_alias(verb):
    """Every verb that prints a result takes --format (with json) and --json, the same thing."""
    cmd = _command(verb)
    fmt, flag = _opt(cmd, "--format"), _opt(cmd, "--json")
    assert fmt is not None and flag is not None, f"`cnnzoo {verb}` lacks --format or --json"
    assert flag.is_eager and not flag.expose_value
    for argv in (["--json"], ["--format", "json"]):
        ctx = cmd.make_context(verb, list(argv), resilient_parsing=True)  # required arguments left out
        assert str(getattr(ctx.params[fmt.name], "value", ctx.params[fmt.name])) == "json", (verb, argv)
    ctx = cmd.make_context(verb, [], resilient_parsing=True)
    assert str(getattr(ctx.params[fmt.name], "value", ctx.params[fmt.name])) == "table"


def test_json_and_another_format_together_are_refused(cli):
    r = cli("info", "lenet5", "--json", "--format", "table")
    assert r.code == 2 and "--json and --format table disagree" in r.err


@pytest.mark.parametrize("argv,new", [
    (["bench"], "bench models"),
    (["bench", "--quick"], "bench models"),
    (["bench", "--models", "resnet50", "--batch", "8"], "bench models"),
    (["bench", "--to-accuracy", "99", "--data", "embedded"], "bench to-accuracy"),
    (["bench", "--data", "embedded", "--to-accuracy=99"], "bench to-accuracy"),
    (["bench", "--loader", "folder:x", "--make-folder", "20"], "bench loader"),
])
def test_old_bench_spellings_exit_2_naming_the_new(argv, new, cli):
    r = cli(*argv)
    err = r.err
    assert r.code == 2 and f"cnnzoo {new}" in err and "Traceback" not in err


def test_help_choice_lists_are_written_from_what_they_list():
    from cnnzoo.analysis.memory import OPTIMIZER_STATES
    from cnnzoo.bench import MODES
    from cnnzoo.bench.settings import PRECISIONS
    from cnnzoo.commands._common import Format
    from cnnzoo.commands._options import choices
    from cnnzoo.commands.export import Target
    from cnnzoo.ensemble import COMBINE
    from cnnzoo.experiments import SIZES
    from cnnzoo.train.recipes import RECIPES, spec
    from cnnzoo.visual.visualize import METHODS

    expect = {
        ("train", "--recipe"): choices(RECIPES),
        ("eval", "--amp"): choices(spec("amp")["choices"]),
        ("eval", "--combine"): choices(COMBINE),
        ("predict", "--combine"): choices(COMBINE),
        ("bench models", "--modes"): " and/or ".join(MODES),
        ("bench models", "--precision"): " or ".join(PRECISIONS),
        ("experiment", "--size"): choices(SIZES),
        ("visualize top9", "--method"): choices(METHODS),
        ("export", "--format"): choices(Format),
        ("export", "--to"): choices(Target),
        ("summary", "--train-memory"): choices(OPTIMIZER_STATES),
    }
    for (verb, flag), listed in expect.items():
        assert listed in _opt(_command(verb), flag).help, (verb, flag)
    for verb in ALL:  # an enum's choices are typer's own listing, from the enum
        fmt = _opt(_command(verb), "--format")
        if fmt is not None and verb != "export":
            assert not any(w in (fmt.help or "") for w in ("table or", "json or", ", json")), verb

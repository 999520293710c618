"""The CLI's root group: verbs come from the table in `_verbs.py` and a verb's module is imported
only when that verb is resolved (run, or asked for its own help). The listing in `cnnzoo --help`
uses light stand-ins built from the table.

Every real command is also finished here, the same way for all verbs: help text unwrapped,
examples appended, flags shown without a `<bool>` type, arguments as NAME (not `{name}`), and
`--json` / `--format json` made aliases of each other wherever a verb prints data."""

from __future__ import annotations

import importlib
import re
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ._verbs import SUB_EXAMPLES, VERBS


def _paragraphs(doc: str) -> str:
    """Join a docstring's hard-wrapped lines: the help panel re-wraps text to the terminal."""
    return "\n\n".join(re.sub(r"\s*\n\s*", " ", p).strip() for p in doc.split("\n\n"))


def _epilog(examples: tuple[str, ...]) -> str:
    from rich.markup import escape

    return "Examples:\n" + "\n".join(f"  $ {escape(e)}" for e in examples)


def _usage_name(arg: TyperArgument) -> str:
    name = (arg.metavar or arg.name or "").upper()
    name = name if arg.required else f"[{name}]"
    return name + ("..." if arg.nargs != 1 else "")


def _option_named(cmd: Any, flag: str) -> Any:
    return next((p for p in cmd.params if flag in getattr(p, "opts", ())), None)


def _format_choices(opt: Any) -> list[str]:
    desc = getattr(opt, "type_descriptor", None)
    return [str(getattr(c, "value", c)) for c in (getattr(desc, "choices", None) or ())]


def _json_spelling(cmd: Any) -> str | None:
    """How this verb spells "print JSON": '--format' (a table|json... choice), '--json' (a flag), or
    None (it prints no data, or its --format is something else: export's target before the rename)."""
    fmt = _option_named(cmd, "--format")
    if fmt is not None and "json" in _format_choices(fmt):
        return "--format"
    return "--json" if _option_named(cmd, "--json") is not None else None


def alias_json(cmd: Any, args: list[str]) -> list[str]:
    """`--json` and `--format json` mean the same on every verb that prints data: rewrite the one
    the verb does not define into the one it does."""
    spelling, has_json = _json_spelling(cmd), _option_named(cmd, "--json") is not None
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return out + args[i:]
        if spelling == "--format" and a == "--json" and not has_json:
            out += ["--format", "json"]
        elif spelling == "--json" and a in ("--format=json", "--format=table"):
            out += ["--json"] if a.endswith("json") else []
        elif spelling == "--json" and a == "--format" and i + 1 < len(args) and args[i + 1] in ("json", "table"):
            out += ["--json"] if args[i + 1] == "json" else []
            i += 1
        else:
            out.append(a)
        i += 1
    return out


def flags_as_flags(params: list[Any]) -> list[Any]:
    """A flag takes no value: show it without typer's `<bool>` type column (--help included)."""
    for p in params:
        if isinstance(p, TyperOption) and p.is_flag:
            p.metavar = ""
    return params


def finish(cmd: Any, path: str) -> Any:
    """Apply the CLI's common conventions to a real command (and a group's sub-commands)."""
    if cmd.help:
        cmd.help = _paragraphs(cmd.help)
    examples = VERBS[path].examples if path in VERBS else SUB_EXAMPLES.get(path, ())
    if examples:
        cmd.epilog = _epilog(examples)
    for p in cmd.params:
        if isinstance(p, TyperArgument):
            p._usage_display_name = (lambda a=p: _usage_name(a))  # NAME, not typer's {name}
    cmd.get_params = (lambda ctx, get=cmd.get_params: flags_as_flags(get(ctx)))
    if isinstance(cmd, TyperGroup):
        for name, sub in cmd.commands.items():
            finish(sub, f"{path} {name}")
    elif _json_spelling(cmd):
        cmd.epilog = (cmd.epilog + "\n\n" if cmd.epilog else "") + "--json is the same as --format json."
    return cmd


def load_verb(name: str) -> Any:
    """Import the verb's module, let it register into a scratch app, and return the click command."""
    module = importlib.import_module(f"{__package__}.{VERBS[name].module}")
    scratch = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    module.register(scratch)

    @scratch.callback()
    def _group() -> None:  # keeps typer from collapsing a one-verb app into a bare command
        pass

    group = typer.main.get_command(scratch)
    cmd = group.commands.get(name)
    if cmd is None:
        raise RuntimeError(f"commands/{VERBS[name].module}.py registers no verb {name!r}")
    return finish(cmd, name)


class LazyGroup(TyperGroup):
    """The root group: lists verbs from the table, imports one only to run it (or show its help)."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in VERBS:
            return None
        if self._listing:  # the root's help: a stand-in with the one-line help, nothing imported
            return TyperCommand(cmd_name, help=VERBS[cmd_name].help, short_help=VERBS[cmd_name].help)
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_verb(cmd_name)
        return self.commands[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, cmd, rest = super().resolve_command(ctx, args)
        leaf, i = cmd, 0
        while isinstance(leaf, TyperGroup) and i < len(rest) and rest[i] in leaf.commands:
            leaf, i = leaf.commands[rest[i]], i + 1
        return name, cmd, rest[:i] + alias_json(leaf, rest[i:])

    def get_params(self, ctx: Any) -> list[Any]:
        return flags_as_flags(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


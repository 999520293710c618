"""The CLI's root group and the one way a verb is declared.

Verbs come from the table in `_verbs.py`; a verb's module is imported only when that verb is
resolved (run, or asked for its own help). The listing in `cnnzoo --help` uses light stand-ins
built from the table.

A verb module defines its command functions at module level, with options declared as
`Annotated[...]` (shared ones in `_options.py` and `_model_args.py`), and adds them in
`register(app)` with `verb(app, NAME, FUNCTION)` (or `group(app, NAME, HELP, ...)` for a verb
with sub-verbs). Both use the classes below, which show arguments as NAME (not typer's `{name}`)
and flags without a `<bool>` type column; `load_verb` adds the help paragraphs and examples."""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable

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


def _flags_as_flags(params: list[Any]) -> list[Any]:
    """A flag takes no value: show it without typer's `<bool>` type column (--help included)."""
    for p in params:
        if isinstance(p, TyperOption) and p.is_flag:
            p.metavar = ""
    return params


class Verb(TyperCommand):
    """A CLI verb (or sub-verb): arguments as NAME in the usage line, flags without a type."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            pieces += [_usage_name(p)] if isinstance(p, TyperArgument) else p.get_usage_pieces(ctx)
        return pieces

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))


class VerbGroup(TyperGroup):
    """A verb with sub-verbs (`cnnzoo visualize filters ...`): flags without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))


def verb(app: typer.Typer, name: str, function: Callable[..., Any]) -> None:
    """Add `function` to `app` as the verb `name` (its docstring is the help)."""
    app.command(name, cls=Verb)(function)


def group(app: typer.Typer, name: str, help: str, subverbs: dict[str, Callable[..., Any]],
          callback: Callable[..., Any] | None = None, cls: type[VerbGroup] = VerbGroup) -> typer.Typer:
    """Add the verb `name` with sub-verbs (name -> function); `callback` takes the group's own
    options (they reach the sub-verbs through the click context's `obj`)."""
    sub = typer.Typer(cls=cls, help=help, no_args_is_help=True)
    if callback is not None:
        sub.callback()(callback)
    for sub_name, function in subverbs.items():
        verb(sub, sub_name, function)
    app.add_typer(sub, name=name)
    return sub


def _finish(cmd: Any, path: str) -> Any:
    """The help as paragraphs and the examples as its epilog, for a verb and its sub-verbs."""
    if cmd.help:
        cmd.help = _paragraphs(cmd.help)
    examples = VERBS[path].examples if path in VERBS else SUB_EXAMPLES.get(path, ())
    if examples:
        cmd.epilog = _epilog(examples)
    for name, sub in getattr(cmd, "commands", {}).items():
        _finish(sub, f"{path} {name}")
    return cmd


def load_verb(name: str) -> Any:
    """Import the verb's module, let it register into a scratch app, and return the click command."""
    module = importlib.import_module(f"{__package__}.{VERBS[name].module}")
    scratch = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    module.register(scratch)

    @scratch.callback()
    def _group() -> None:  # keeps typer from collapsing a one-verb app into a bare command
        pass

    cmd = typer.main.get_command(scratch).commands.get(name)
    if cmd is None:
        raise RuntimeError(f"commands/{VERBS[name].module}.py registers no verb {name!r}")
    return _finish(cmd, name)


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

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

"""One door for errors: every entry point runs its ``main`` through `entry_point`.

`train.py`, every ``python -m analysis.*``, the explorer's launcher, the ToySounds build and the benchmarks
all end the same way on a user's mistake:

- a `lightning_agx.errors.UserError` (or a library error mapped to one, `MAPPED`) prints one line,
  ``PROG: error: MESSAGE``, and exits 2; ``--debug`` anywhere on the command line shows the traceback instead;
- a parse error (an unknown option, a bad value, YAML that cannot be read) prints one line and a pointer to
  ``--help``, never the whole usage;
- Ctrl-C (a `KeyboardInterrupt` outside a run's own signal handling) prints one line and exits 130;
- a run stopped by SIGINT / SIGTERM (`lightning_agx.errors.RunStopped`) says what was saved and exits 130 / 143.

Anything else is a bug and keeps its traceback. argparse-based entry points build their parser with
`ArgumentParser` here, whose errors raise `UsageError` instead of printing the usage.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from .errors import RunStopped, UsageError, UserError

DEBUG_FLAGS = ("--debug", "--debug=true", "--debug=True", "--debug=1")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors raise `UsageError` (one line and a pointer to ``--help``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401  argparse's hook
        raise UsageError(message)


def whole(low: int = 1):
    """An argparse ``type`` for `ArgumentParser`: a whole number >= `low` (a bad value is one line with a pointer
    to --help)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}; got {text!r}")
        return value
    parse.__name__ = f"whole number >= {low}"
    return parse


def usage_message(error: BaseException) -> str:
    """One line of a parser's error (jsonargparse's spans several: ``Parser key "seed":`` then the reason)."""
    lines = [line.strip(" -") for line in str(error).splitlines() if line.strip(" -")]
    if not lines:
        return type(error).__name__
    first = lines[0]
    if first.startswith("Parser key") and len(lines) > 1:
        first = f"{first.removeprefix('Parser key').strip()} {lines[1]}"
    first = first.replace("<class '", "").replace("'>", "")
    return first if len(first) <= 300 else first[:297] + "..."


def _mapped(error: BaseException) -> str | None:
    """The one-line message of a library error that is the user's to fix, else None (a bug)."""
    try:
        from jsonargparse import ArgumentError as JsonArgumentError
    except ImportError:  # pragma: no cover  jsonargparse is a dependency
        JsonArgumentError = ()  # noqa: N806
    if isinstance(error, (argparse.ArgumentError, JsonArgumentError)):
        return f"{usage_message(error)}; see --help"
    return None


def run(main: Callable[[list[str]], object], argv: list[str] | None = None, prog: str | None = None) -> None:
    """Call ``main(argv)`` behind the door (see the module doc); `argv` defaults to ``sys.argv[1:]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = any(a in DEBUG_FLAGS for a in argv)
    argv = [a for a in argv if a not in DEBUG_FLAGS]
    prog = prog or _prog()
    try:
        main(argv)
    except RunStopped as stop:
        print(f"{prog}: {stop}", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
    except UserError as error:
        if debug:
            raise
        print(f"{prog}: error: {_one_line(error)}{_hint(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted (Ctrl-C); results saved so far are kept, rerun the same command to resume",
              file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as error:  # noqa: BLE001  only the mapped library errors; the rest re-raised
        message = _mapped(error)
        if message is None or debug:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def entry_point(main: Callable[[list[str]], object], prog: str | None = None) -> Callable[[list[str] | None], None]:
    """``main(argv)`` wrapped by `run`: what a module's ``main`` is (``main = entry_point(_main)``)."""
    def wrapped(argv: list[str] | None = None) -> None:
        run(main, argv, prog)
    wrapped.__doc__ = main.__doc__
    wrapped.__wrapped__ = main
    return wrapped


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _hint(error: BaseException) -> str:
    if isinstance(error, UsageError):
        return "; see --help"
    return " (--debug shows the traceback)"


def _prog() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return f"python -m {spec.name.removesuffix('.__main__')}"
    return sys.argv[0].rsplit("/", 1)[-1] or "lightning_agx"


__all__ = ["ArgumentParser", "entry_point", "run", "usage_message", "whole"]

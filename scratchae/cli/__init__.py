"""The ``scratchae`` command: train, eval, sample, encode, gradcheck, trace, bench.

Every error on bad input (a scratchae error, a bad argument, an unreadable file) ends the
command with one line ``scratchae: error: ...`` on stderr and a non-zero exit status (2 for a
bad command line, 1 otherwise); never a traceback.

Modules: ``args`` (the parser), ``runs`` (run folders, data, messages in the command line's words),
``train``, ``report`` (metrics, figures, summary), ``use`` (eval, sample, encode), ``checks``
(gradcheck, trace, bench).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from ..errors import ScratchAEError
from .args import UsageError, build_parser
from .checks import cmd_bench, cmd_gradcheck, cmd_trace
from .runs import flag_words, one_line
from .train import cmd_train
from .use import cmd_encode, cmd_eval, cmd_sample

COMMANDS = {
    "train": cmd_train,
    "eval": cmd_eval,
    "sample": cmd_sample,
    "encode": cmd_encode,
    "gradcheck": cmd_gradcheck,
    "trace": cmd_trace,
}


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    print(f"scratchae: warning: {flag_words(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    with warnings.catch_warnings():  # the library's warnings as one line each, not Python's file:line form
        warnings.showwarning = _show_warning
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["bench"]:
            return cmd_bench(argv[1:])
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"scratchae: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (scratchae eval RUN | head): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush would fail again
        return 1
    except (ScratchAEError, OSError) as exc:
        print(f"scratchae: error: {flag_words(exc)}", file=sys.stderr)
        return 1
    except MemoryError as exc:  # NumPy names the allocation it could not make
        print(
            f"scratchae: error: out of memory ({one_line(exc) or 'an allocation failed'}): ask for less "
            f"(a smaller -n, --batch-size, --iwae-k or --limit)",
            file=sys.stderr,
        )
        return 1
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt as exc:  # train says where its checkpoint stands
        print("scratchae: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        return 130

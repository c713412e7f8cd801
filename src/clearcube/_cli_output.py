"""What the command line writes where: a command's result alone on stdout, everything else
(progress, logs, notes, errors) on stderr, and the logging the CLI configures (``-v``,
``--log-file``), with URLs scrubbed of tokens and credentials.

Only the CLI (:mod:`clearcube.cli`) uses this module; the library's modules only log through
``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from .scrub import scrub_text

__all__ = ["configure_logging", "logging_options", "remove_handlers", "stdout_reserved"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Marks the handlers this module installed, so a second configuration replaces them.
_HANDLER_TAG = "_clearcube_cli"


class _ScrubbingFormatter(logging.Formatter):
    """Formats a record, then strips query strings, fragments and user:password from every
    URL in it and blanks credential headers (tracebacks included): signed hrefs carry
    tokens."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record))


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on whatever ``sys.stderr`` is when a record is written."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _NotFileOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


def configure_logging(verbose: int, log_file: str | None) -> None:
    """stderr shows warnings, ``-v`` clearcube's info, ``-vv`` its debug, ``-vvv`` every
    library's debug; ``--log-file`` records clearcube's debug and everyone's warnings with
    timestamps, whatever ``-v`` says."""
    remove_handlers()
    root = logging.getLogger()
    levels = {0: logging.WARNING, 1: logging.INFO}
    console = _Stderr()
    console.setLevel(levels.get(verbose, logging.DEBUG))
    console.setFormatter(_ScrubbingFormatter("%(levelname)s %(name)s: %(message)s"))
    console.addFilter(_NotFileOnly())
    handlers: list[logging.Handler] = [console]
    if log_file:
        try:
            to_file: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot write {log_file} ({exc.strerror}); give a file in an existing folder",
                param_hint="'--log-file'",
            ) from None
        to_file.setLevel(logging.DEBUG)
        to_file.setFormatter(_ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(to_file)
    for handler in handlers:
        setattr(handler, _HANDLER_TAG, True)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose >= 3 else logging.WARNING)
    ours = logging.DEBUG if (verbose >= 2 or log_file) else levels.get(verbose, logging.DEBUG)
    logging.getLogger("clearcube").setLevel(ours)


def remove_handlers() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_TAG, False)]:
        root.removeHandler(handler)
        handler.close()


def _logging_option(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    state = ctx.find_root().meta.setdefault("clearcube.logging", {"verbose": 0, "file": None})
    if param.name == "verbose" and value:
        state["verbose"] = max(state["verbose"], int(value))
    elif param.name == "log_file" and value:
        state["file"] = value
    else:
        return
    configure_logging(state["verbose"], state["file"])


def logging_options(f: _F) -> _F:
    """``-v/--verbose`` and ``--log-file``, defined once: accepted before the command name
    and after it."""
    f = click.option(
        "--log-file",
        type=click.Path(dir_okay=False),
        default=None,
        expose_value=False,
        callback=_logging_option,
        help="Also write the log (clearcube's debug messages, with times) to this file.",
    )(f)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_logging_option,
        help="More log messages on stderr (-v info, -vv debug, -vvv libraries' debug too).",
    )(f)


@contextlib.contextmanager
def stdout_reserved() -> Iterator[None]:
    """While a command works, everything written to stdout (Python's sys.stdout and file
    descriptor 1, so C libraries and progress bars too) goes to stderr; the command prints
    its result after this block."""
    sys.stdout.flush()
    try:
        saved: int | None = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no file descriptor 1 (an embedding host)
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)

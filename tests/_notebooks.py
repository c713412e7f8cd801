"""Executing the notebooks on the demo catalog, offline, and keeping their outputs portable.

``python -m tests._notebooks`` executes every ``notebooks/*.ipynb`` top to bottom and writes it
back with its outputs (what is committed); ``tests/test_notebooks.py`` executes them again and
compares. Outputs are scrubbed of the paths of the machine that ran them (the repository, the
Python environment, the home and temporary folders), and no timing is recorded, so running
them again on another machine changes nothing but the figures' bytes.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"

#: The committed size limit of one notebook file, outputs and figures included.
MAX_BYTES = 300_000


def notebooks() -> list[Path]:
    """The notebooks, in order."""
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _machine_paths() -> list[tuple[str, str]]:
    """(absolute path, what it is written as) for the folders of this machine, longest first."""
    pairs = {
        str(NOTEBOOKS): ".",
        str(REPO): "..",
        sys.prefix: "<python>",
        sys.base_prefix: "<python>",
        os.path.realpath(tempfile.gettempdir()): "<tmp>",
        tempfile.gettempdir(): "<tmp>",
        str(Path.home()): "~",
    }
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def scrub_text(text: str) -> str:
    """``text`` with this machine's folders replaced (see :func:`_machine_paths`)."""
    for path, name in _machine_paths():
        if len(path) > 1:
            text = text.replace(path, name)
    return text


def _texts(output: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """(container, key) of every text field of one output."""
    if "text" in output:
        yield output, "text"
    if "traceback" in output:
        for i in range(len(output["traceback"])):
            yield output["traceback"], i  # type: ignore[misc]
    for mime, value in output.get("data", {}).items():
        if isinstance(value, str) and not mime.startswith("image/"):
            yield output["data"], mime


def scrub(book: Any) -> Any:
    """Scrub every output of ``book`` in place and drop per-cell execution metadata."""
    for cell in book.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            for container, key in _texts(output):
                container[key] = scrub_text(container[key])
    return book


def execute(path: Path, timeout: int = 600) -> Any:
    """``path`` executed top to bottom in a fresh kernel (working folder: its own), scrubbed."""
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return scrub(book)


def outputs_of(book: Any) -> list[list[dict[str, Any]]]:
    """The outputs of every code cell, in order."""
    return [list(c.get("outputs", [])) for c in book.cells if c.cell_type == "code"]


def main() -> int:
    for path in notebooks():
        book = execute(path)
        nbformat.write(book, path)
        size = path.stat().st_size
        print(f"{path.relative_to(REPO)}: executed, {size / 1000:.0f} kB")
        if size > MAX_BYTES:
            print(f"{path.name}: over {MAX_BYTES / 1000:.0f} kB; make its figures smaller")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The notebooks are committed with their outputs (run on the demo catalog, offline, by
``python -m tests._notebooks``), small and free of machine paths, and still run to the same
outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from . import _notebooks

NOTEBOOKS = _notebooks.notebooks()

#: Absolute paths of a machine (POSIX roots, a Windows drive) or of an installed package.
MACHINE_PATH = re.compile(
    r"(?<![\w.])/(home|root|tmp|work|usr|opt|var|Users|mnt|private)/|site-packages|[A-Z]:\\\\"
)


def _kinds(output: dict[str, Any]) -> tuple[str, ...]:
    return (output["output_type"], output.get("name", ""), *sorted(output.get("data", {})))


def _text(output: dict[str, Any]) -> dict[str, str]:
    """The text of one output by field (stream text, text/plain, text/html, ...)."""
    texts = {"text": output["text"]} if "text" in output else {}
    for mime, value in output.get("data", {}).items():
        if not mime.startswith("image/"):
            texts[mime] = value if isinstance(value, str) else "".join(value)
    return texts


def test_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01-explore-archive.ipynb", "02-masked-composite.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_committed_with_outputs(path: Path):
    assert path.stat().st_size < _notebooks.MAX_BYTES, "make the figures smaller (dpi)"
    book = nbformat.read(path, as_version=4)
    assert "Earth Search" in book.cells[0].source
    assert "Planetary Computer" in book.cells[0].source
    code = [c for c in book.cells if c.cell_type == "code"]
    # executed top to bottom, once, in one kernel
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        "execute the notebooks with: python -m tests._notebooks"
    )
    outputs = [o for c in code for o in c.outputs]
    assert outputs, "committed without outputs"
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plots were drawn
    assert all("execution" not in c.metadata for c in code)  # no timings
    text = json.dumps([_text(o) for o in outputs])
    assert not MACHINE_PATH.search(text), MACHINE_PATH.search(text)
    assert _notebooks.scrub_text(text) == text


def test_scrub_replaces_this_machines_folders():
    repo = str(_notebooks.REPO)
    text = f"{repo}/notebooks/x.tif and {repo}/src/clearcube/cube.py"
    assert _notebooks.scrub_text(text) == "./x.tif and ../src/clearcube/cube.py"
    assert "site-packages" not in _notebooks.scrub_text(str(Path(json.__file__).parent))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_to_its_committed_outputs(path: Path):
    committed = _notebooks.outputs_of(nbformat.read(path, as_version=4))
    fresh = _notebooks.outputs_of(_notebooks.execute(path))
    assert not [o for cell in fresh for o in cell if o["output_type"] == "error"]
    assert len(fresh) == len(committed)
    for number, (now, then) in enumerate(zip(fresh, committed, strict=True), start=1):
        # every cell still shows the same kinds of output (a figure, a table, printed text) ...
        assert [_kinds(o) for o in now] == [_kinds(o) for o in then], f"code cell {number}"
        # ... with the same text; figures are not compared byte for byte
        for a, b in zip(now, then, strict=True):
            assert _text(a) == _text(b), f"code cell {number}: re-run python -m tests._notebooks"

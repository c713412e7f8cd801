"""The API reference checks (tests/_apidocs.py, run by .ci/run on clearcube) find what they
promise: on a small package with one fault of each kind, and on clearcube's own page."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from . import _apidocs

FAULTY = {
    "__init__.py": '''
        """A package with one fault of each kind."""

        from .good import documented, undocumented

        __all__ = ["documented", "undocumented", "missing"]
    ''',
    "good.py": '''
        """Documented module."""

        __all__ = ["Thing", "documented", "undocumented"]


        def documented() -> int:
            """Has a docstring."""
            return 1


        def undocumented() -> int:
            return 2


        class Thing:
            """A class whose method has no docstring."""

            def method(self) -> None:
                pass

            def _private(self) -> None:
                pass
    ''',
    "bare.py": """
        def helper() -> None:
            pass
    """,
    "_hidden.py": """
        def secret() -> None:
            pass
    """,
}


@pytest.fixture
def faulty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = tmp_path / "src" / "faultypkg"
    root.mkdir(parents=True)
    for name, text in FAULTY.items():
        (root / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    importlib.invalidate_caches()
    yield "faultypkg"
    for name in [m for m in sys.modules if m.split(".")[0] == "faultypkg"]:
        del sys.modules[name]


def test_public_modules_leave_out_private_ones(faulty):
    assert _apidocs.public_modules(faulty) == ["faultypkg", "faultypkg.bare", "faultypkg.good"]


def test_every_fault_is_one_problem(faulty, tmp_path):
    problems = _apidocs.build(_apidocs.public_modules(faulty), tmp_path / "api")
    assert (tmp_path / "api" / "faultypkg" / "good.html").is_file()
    text = "\n".join(problems)
    # the name in __all__ that does not exist: pdoc warns (and renders an empty entry)
    assert "pdoc: Found 'missing' in faultypkg.__all__, but it does not resolve" in text
    # undocumented module, function and method, each named once where it is defined
    assert "faultypkg.bare: no docstring" in problems
    assert "faultypkg.bare.helper: no docstring" in problems
    assert "faultypkg.good.undocumented: no docstring" in problems
    assert "faultypkg.good.Thing.method: no docstring" in problems
    assert sum("undocumented: no docstring" in p for p in problems) == 1
    # private names and modules are not asked for docstrings
    assert "_private" not in text
    assert "secret" not in text
    assert all("\n" not in p for p in problems)


def test_clearcube_page_has_every_public_name(tmp_path):
    import clearcube

    problems = _apidocs.build(["clearcube"], tmp_path)
    assert problems == []
    page = (tmp_path / "clearcube.html").read_text(encoding="utf-8")
    assert _apidocs.absent_from_page(page, clearcube.__all__) == []
    assert _apidocs.absent_from_page(page, ["not_a_name"]) == ["not_a_name"]
    # the docstrings themselves, not only the names
    assert "Run the main job and write its products" in page

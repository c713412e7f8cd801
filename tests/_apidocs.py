"""The API reference, built from the docstrings with pdoc, and its checks.

``python -m tests._apidocs OUT`` writes the HTML reference of clearcube's public modules (every
module whose dotted name has no part starting with an underscore) into OUT, and exits 1 with
one line per problem when

- pdoc warns while building it (a module that does not import, a name in ``__all__`` that does
  not resolve, an annotation it cannot read);
- a public module, or a public class, function or method defined in one, has no docstring
  (attributes and constants are described in their class's or module's docstring, so they are
  not counted);
- a name of the package's ``__all__`` has no entry on the package's page.

Source listings are left out of the pages (they took five sixths of the build time).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pdoc
import pdoc.doc
import pdoc.render

#: The docstring convention of the code base (``Attributes`` / ``Raises`` sections).
DOCFORMAT = "numpy"


def public_modules(package: str) -> list[str]:
    """``package`` and its submodules whose names have no private part, sorted."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return sorted(names)


def _definitions(namespace: pdoc.doc.Namespace) -> Iterator[pdoc.doc.Doc]:  # type: ignore[type-arg]
    """The public classes, functions and methods of ``namespace``, nested classes included."""
    members = (
        namespace.own_members
        if isinstance(namespace, pdoc.doc.Class)
        else namespace.members.values()
    )
    for member in members:
        if member.name.startswith("_") or isinstance(member, pdoc.doc.Module | pdoc.doc.Variable):
            continue
        yield member
        if isinstance(member, pdoc.doc.Class):
            yield from _definitions(member)


def undocumented(modules: Iterable[str]) -> list[str]:
    """The public modules, classes, functions and methods among ``modules`` without a
    docstring, each named once where it is defined."""
    missing: set[str] = set()
    for name in modules:
        module = pdoc.doc.Module.from_name(name)
        if not module.docstring.strip():
            missing.add(name)
        for member in _definitions(module):
            if not member.docstring.strip():
                missing.add(".".join(member.taken_from))
    return sorted(missing)


def absent_from_page(page: str, names: Iterable[str]) -> list[str]:
    """The ``names`` that have no entry (an element with that id) on a rendered module page."""
    return [name for name in names if f'id="{name}"' not in page]


def build(modules: Sequence[str], out: Path) -> list[str]:
    """Render ``modules`` into ``out``; the problems found (see the module docstring)."""
    pdoc.render.configure(docformat=DOCFORMAT, show_source=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules, output_directory=out)
        problems = [f"pdoc: {w.message}".splitlines()[0] for w in caught]
    problems += [f"{name}: no docstring" for name in undocumented(modules)]
    package = modules[0].split(".")[0]
    page = out.joinpath(*package.split(".")).with_suffix(".html")
    exported = getattr(importlib.import_module(package), "__all__", [])
    if not page.is_file():
        problems.append(f"{page.name}: not written")
    else:
        problems += [
            f"{package}.{name}: in {package}.__all__ but not in {page.name}"
            for name in absent_from_page(page.read_text(encoding="utf-8"), exported)
        ]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 2):
        print("usage: python -m tests._apidocs OUT [PACKAGE]", file=sys.stderr)
        return 2
    out = Path(args[0])
    package = args[1] if len(args) == 2 else "clearcube"
    start = time.monotonic()
    modules = public_modules(package)
    problems = build(modules, out)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"api reference: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(
        f"api reference: {len(modules)} modules written to {out} ({time.monotonic() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

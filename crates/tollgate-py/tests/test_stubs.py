"""The typed stubs describe the native module as built: every class,
method and property the stub declares exists, and nothing public is
missing from it."""

from __future__ import annotations

import ast
from pathlib import Path

import tollgate
from tollgate import _native

STUB = Path(tollgate.__file__).with_name("_native.pyi")


def declared() -> dict[str, set[str]]:
    tree = ast.parse(STUB.read_text())
    found: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            found[node.name] = {
                item.name for item in node.body if isinstance(item, ast.FunctionDef) and not item.name.startswith("__")
            }
    return found


def test_stub_matches_the_module() -> None:
    stub = declared()
    public = {name for name in dir(_native) if not name.startswith("_")}
    assert public == set(stub), (public ^ set(stub))
    for name, members in stub.items():
        actual = {m for m in dir(getattr(_native, name)) if not m.startswith("_")}
        if issubclass(getattr(_native, name), BaseException):
            continue
        assert members == actual, (name, members ^ actual)
    assert (Path(tollgate.__file__).parent / "py.typed").is_file()

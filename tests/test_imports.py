"""Every module of the package imports (catches syntax and import-order errors in code only a CLI verb reaches)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import editable_deepsc

MODULES = sorted(m.name for m in pkgutil.walk_packages(editable_deepsc.__path__, "editable_deepsc."))


def test_the_package_has_modules():
    assert len(MODULES) > 100 and "editable_deepsc.eval.session_bench" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)


# ---------------------------------------------------------------------- how many own modules a module uses
MAX_OWN_IMPORTS = 10
"""No module outside ``cli/`` and ``eval/`` imports more than this many of the package's own modules."""

PACKAGE_DIR = Path(editable_deepsc.__file__).parent


def _is_module(name: str) -> bool:
    """Whether ``editable_deepsc.x.y`` names a module or package of the package (not a function or class)."""
    path = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def own_imports(source: str) -> set[str]:
    """The ``editable_deepsc.*`` modules that ``source`` imports at run time (anywhere in the file).

    Imports under ``if TYPE_CHECKING:`` are annotations only and do not count;
    ``from editable_deepsc.zoo import registry`` counts as ``editable_deepsc.zoo.registry``.
    """
    tree = ast.parse(source)
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "editable_deepsc" or node.module.startswith("editable_deepsc."):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    found.add(sub if _is_module(sub) else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("editable_deepsc."))
    return found


def _counted_modules() -> list[str]:
    rels = (p.relative_to(PACKAGE_DIR).as_posix() for p in PACKAGE_DIR.rglob("*.py"))
    return sorted(r for r in rels if not r.startswith(("cli/", "eval/")))


def test_own_imports_counts_runtime_imports_only():
    src = ("from editable_deepsc.channel import AWGN, make_channel\nimport editable_deepsc.rng\n"
           "from editable_deepsc import zoo, errors\nfrom editable_deepsc.zoo import registry\n"
           "from editable_deepsc.zoo.registry import card\nfrom typing import TYPE_CHECKING\n"
           "if TYPE_CHECKING:\n    from editable_deepsc.system import SystemConfig\n"
           "def f():\n    from editable_deepsc.metrics.image import psnr\n    from . import x\n")
    assert own_imports(src) == {"editable_deepsc.channel", "editable_deepsc.rng", "editable_deepsc.zoo",
                                "editable_deepsc.errors", "editable_deepsc.zoo.registry",
                                "editable_deepsc.metrics.image"}


def test_the_import_count_sees_the_package():
    mods = _counted_modules()
    assert "system.py" in mods and "channel/link.py" in mods
    assert not any(m.startswith(("cli/", "eval/")) for m in mods)


@pytest.mark.parametrize("rel", _counted_modules())
def test_a_module_imports_at_most_ten_own_modules(rel):
    used = own_imports((PACKAGE_DIR / rel).read_text())
    assert len(used) <= MAX_OWN_IMPORTS, f"{rel} imports {len(used)} package modules: {sorted(used)}"

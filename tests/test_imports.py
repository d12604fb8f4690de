"""Every module of the package imports (catches syntax and import-order errors in code only a CLI verb reaches)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import editable_deepsc

MODULES = sorted(m.name for m in pkgutil.walk_packages(editable_deepsc.__path__, "editable_deepsc."))


def test_the_package_has_modules():
    assert len(MODULES) > 100 and "editable_deepsc.eval.session_bench" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)

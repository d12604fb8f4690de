"""Generators: the teacher face source, the built-in edsc-faces64, StyleGAN2; ``load_generator`` by name or path."""

from __future__ import annotations


def __getattr__(name: str):  # lazy: importing the package stays cheap
    if name == "load_generator":
        from editable_deepsc.generator.loading import load_generator

        return load_generator
    raise AttributeError(f"module 'editable_deepsc.generator' has no attribute {name!r}")


__all__ = ["load_generator"]

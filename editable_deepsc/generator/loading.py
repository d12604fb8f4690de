"""``load_generator``: the one generator resolver, by registry name, path or untrained spelling.

=================================  =================================================
``name_or_path``                   what is loaded
=================================  =================================================
``"teacher-dcgan64"``              the DCGAN face source (latent ``z``, ``num_ws = 1``)
``"edsc-faces64"``                 the built-in style-based generator (W+ of 5 x 100)
``"edsc-faces64@teacher-init"``    the untrained style generator copied from the teacher
                                   (:data:`UNTRAINED_SUFFIX`; trainers' warm-up runs)
a user / cache card name           a user checkpoint registered earlier (StyleGAN2)
``path/to/model.pt`` / ``.pth``    a rosinality-format StyleGAN2 checkpoint
                                   (``{"g_ema": ..., "latent_avg": ...}``), converted
                                   to safetensors on first use and registered
``path/to/model.safetensors``      a file written by this package (its metadata
                                   ``format`` says which architecture)
=================================  =================================================

Registered names and safetensors files go through :func:`editable_deepsc.zoo.load`,
whose ``generator`` builder is :func:`generator_from_card`. Every failure is a
one-line :class:`~editable_deepsc.errors.CheckpointError`: unknown name, missing
file, corrupt file, wrong shapes, sha256 mismatch.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from editable_deepsc.errors import CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.faces64 import FACES64_FORMAT, FACES64_NAME, Faces64Generator
from editable_deepsc.generator.teacher import TEACHER_FORMAT, TEACHER_NAME, TeacherDCGAN, load_teacher
from editable_deepsc.zoo import loader, registry
from editable_deepsc.zoo.sets import load_set

BUILTIN_GENERATORS = (TEACHER_NAME, FACES64_NAME)
#: ``<generator>@teacher-init``: the style generator initialised from the teacher, untrained (warm-up runs).
UNTRAINED_SUFFIX = "@teacher-init"


def default_generator_name() -> str:
    """The generator of the default model set (``edsc-faces64``)."""
    return load_set().member("generator")


def untrained_name(generator_name: str = FACES64_NAME) -> str:
    """The one spelling of the untrained copy of ``generator_name``: ``edsc-faces64@teacher-init``."""
    return f"{generator_name}{UNTRAINED_SUFFIX}"


def _generator_classes() -> dict[str, type[StyleGenerator]]:
    from editable_deepsc.generator import stylegan2
    from editable_deepsc.generator.mobile_stylegan import FORMAT as MOBILE_FORMAT
    from editable_deepsc.generator.mobile_stylegan import MobileStyleGAN

    return {FACES64_FORMAT: Faces64Generator, TEACHER_FORMAT: TeacherDCGAN, stylegan2.FORMAT: stylegan2.StyleGAN2Generator,
            MOBILE_FORMAT: MobileStyleGAN}  # fmt: skip


def generator_from_card(card: registry.ModelCard, state: dict[str, torch.Tensor]) -> StyleGenerator:
    """Zoo builder of kind ``generator``: the weights' ``format`` tag picks the class, whose ``from_card`` builds it.

    Raises
    ------
    CheckpointError
        A format of no known generator, or tensors that do not fit it.
    """
    fmt = registry.file_metadata(card.path).get("format", "")
    classes = _generator_classes()
    if fmt not in classes:
        raise CheckpointError(f"{card.name} is a {card.kind} of format {fmt!r}, not a generator")
    return classes[fmt].from_card(card, state).eval().requires_grad_(False)


def load_faces64(name_or_path: str | os.PathLike = FACES64_NAME) -> Faces64Generator:
    """Load ``edsc-faces64`` from the zoo (sha256-checked) or a safetensors path."""
    g = load_generator(name_or_path)
    if not isinstance(g, Faces64Generator):
        raise CheckpointError(f"{name_or_path} is not an edsc-faces64 checkpoint")
    return g


def load_generator(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> StyleGenerator:
    """Load a generator by registry name or by path (see the module docstring).

    Parameters
    ----------
    name_or_path : str or path-like, optional
        ``"teacher-dcgan64"``, ``"edsc-faces64"``, ``"edsc-faces64@teacher-init"``,
        a registered user name, or a path to a rosinality ``.pt``/``.pth`` or a ``.safetensors`` file;
        ``None``: the generator of the default model set.
    device : str or torch.device
        Where the returned module lives.

    Returns
    -------
    StyleGenerator
        In eval mode with ``requires_grad`` off.

    Raises
    ------
    CheckpointError
        Unknown name, missing/corrupt file, wrong shapes, sha256 mismatch.
    """
    from editable_deepsc.generator import stylegan2

    s = str(name_or_path) if name_or_path is not None else default_generator_name()
    p = Path(s).expanduser()
    if s.endswith(UNTRAINED_SUFFIX):
        base = s[: -len(UNTRAINED_SUFFIX)]
        if base != FACES64_NAME:
            raise CheckpointError(f"no untrained spelling for {base!r} (only {untrained_name()})")
        g: StyleGenerator = Faces64Generator.from_teacher(load_teacher())
        g.name = s
    elif s == TEACHER_NAME:
        g = load_teacher()
    elif not p.suffix and not p.exists():
        if registry.find_card(s) is None:
            known = ", ".join(list(BUILTIN_GENERATORS) + [c.name for c in registry.list_cache_cards()])
            raise CheckpointError(f"unknown generator {s!r} (known: {known}; or give a .pt/.safetensors path)")
        g = loader.load(s, kind="generator")
    elif not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    elif p.suffix in (".pt", ".pth"):
        g = stylegan2.load_rosinality(p)
    elif p.suffix == ".safetensors":
        g = loader.load(p, kind="generator")
    else:
        raise CheckpointError(f"unsupported checkpoint type {p.suffix!r}: use .pt/.pth (rosinality) or .safetensors")
    return g.to(device).eval().requires_grad_(False)

"""``load_generator``: one factory for every generator, by registry name or by path.

=================================  =================================================
``name_or_path``                   what is loaded
=================================  =================================================
``"teacher-dcgan64"``              the DCGAN face source (latent ``z``, ``num_ws = 1``)
``"edsc-faces64"``                 the built-in style-based generator (W+ of 5 x 100)
a user card name                   a user checkpoint registered earlier (StyleGAN2)
``path/to/model.pt`` / ``.pth``    a rosinality-format StyleGAN2 checkpoint
                                   (``{"g_ema": ..., "latent_avg": ...}``), converted
                                   to safetensors on first use and registered
``path/to/model.safetensors``      a file written by this package (its metadata
                                   ``format`` says which architecture)
=================================  =================================================

Every failure is a one-line :class:`~editable_deepsc.errors.CheckpointError`:
unknown name, missing file, corrupt file, wrong shapes, sha256 mismatch.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from editable_deepsc.errors import CheckpointError
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.faces64 import FACES64_NAME, Faces64Generator
from editable_deepsc.generator.teacher import TEACHER_NAME, TeacherDCGAN, _load_strict, load_teacher
from editable_deepsc.zoo import catalog, registry

FACES64_FORMAT = "edsc-faces64"
TEACHER_FORMAT = "edsc-teacher-dcgan64"
BUILTIN_GENERATORS = (TEACHER_NAME, FACES64_NAME)


def _faces64_from_state(state: dict[str, torch.Tensor], name: str) -> Faces64Generator:
    if "mapping_net.fc1.weight" not in state:
        raise CheckpointError(f"{name} is not an edsc-faces64 checkpoint (no mapping_net.fc1.weight)")
    g = Faces64Generator(hidden=int(state["mapping_net.fc1.weight"].shape[0]))
    _load_strict(g, state)
    return g


def load_faces64(name_or_path: str | os.PathLike = FACES64_NAME) -> Faces64Generator:
    """Load ``edsc-faces64`` from the zoo (sha256-checked) or a safetensors path."""
    if str(name_or_path) == FACES64_NAME:
        c = registry.card(FACES64_NAME)
        if not c.path.is_file():
            raise CheckpointError(f"{FACES64_NAME} weights missing ({c.path.name}); train them: edsc train generator")
    state = registry.load_state_dict(name_or_path)
    g = _faces64_from_state(state, str(name_or_path))
    g.name = FACES64_NAME if str(name_or_path) == FACES64_NAME else str(name_or_path)
    return g


def _safetensors_format(path: Path) -> str:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return (f.metadata() or {}).get("format", "")
    except Exception as e:  # noqa: BLE001 - any parse failure is a corrupt file
        raise CheckpointError(f"corrupt checkpoint {path.name}: {e.__class__.__name__}") from None


def load_generator(name_or_path: str | os.PathLike, device: str | torch.device = "cpu") -> StyleGenerator:
    """Load a generator by registry name or by path (see the module docstring).

    Parameters
    ----------
    name_or_path : str or path-like
        ``"teacher-dcgan64"``, ``"edsc-faces64"``, a registered user name, or a
        path to a rosinality ``.pt``/``.pth`` or a ``.safetensors`` file.
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

    s = str(name_or_path)
    if s == TEACHER_NAME:
        g: StyleGenerator = load_teacher(device=device)
    elif s == FACES64_NAME:
        g = load_faces64()
    else:
        p = Path(s).expanduser()
        card = catalog.find_card(s) if not p.suffix else None
        if card is not None:
            if card.config.get("arch") != stylegan2.ARCH:
                raise CheckpointError(f"{s} is a {card.kind} of arch {card.config.get('arch')!r}, not a generator")
            g = stylegan2.load_converted(card.path, card.sha256, name=card.name)
        elif not p.suffix and not p.exists():
            known = ", ".join(list(BUILTIN_GENERATORS) + [c.name for c in catalog.list_user_cards()])
            raise CheckpointError(f"unknown generator {s!r} (known: {known}; or give a .pt/.safetensors path)")
        elif not p.is_file():
            raise CheckpointError(f"checkpoint not found: {p}")
        elif p.suffix in (".pt", ".pth"):
            g = stylegan2.load_rosinality(p)
        elif p.suffix == ".safetensors":
            fmt = _safetensors_format(p)
            if fmt == FACES64_FORMAT:
                g = load_faces64(p)
            elif fmt == TEACHER_FORMAT:
                g = TeacherDCGAN()
                _load_strict(g, registry.load_state_dict(p))
                g.name = str(p)
            elif fmt == stylegan2.FORMAT:
                g = stylegan2.load_converted(p, None, name=str(p))
            else:
                raise CheckpointError(f"{p.name}: unknown safetensors format {fmt!r} (not written by editable_deepsc)")
        else:
            raise CheckpointError(f"unsupported checkpoint type {p.suffix!r}: use .pt/.pth (rosinality) or .safetensors")
    return g.to(device).eval().requires_grad_(False)

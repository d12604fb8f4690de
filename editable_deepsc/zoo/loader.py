"""One loader for every model: ``load(name_or_path)`` → card → sha256 → the builder of the card's kind.

Each model kind has one builder, the classmethod ``from_card(card, state)`` of
its class (CompressAI's factory shape), registered here by import path so that
the zoo does not import the models it builds until one is asked for:

==================  ===========================================================
card ``kind``       builder
==================  ===========================================================
``generator``       :func:`editable_deepsc.generator.loading.generator_from_card`
                    (picks ``Faces64Generator`` / ``TeacherDCGAN`` / ``StyleGAN2Generator``)
``encoder``         ``E4EEncoder.from_card``
``codec``           ``SemanticCodec.from_card``
``delta-statistics`` ``LatentPCA.from_card``
``directions``      ``AttributeDirections.from_card``
``latent-critic``   ``LatentCritic.from_card``
``deepjscc``        ``DeepJSCC.from_card``
``face-net``        :func:`editable_deepsc.guidance.faces.weights.faceapi_state_from_card`
``face-embedding``  ``FaceRes.from_card`` (the second face descriptor, converted into the cache)
==================  ===========================================================

A bare ``.safetensors`` path written by this package loads the same way: its
header ``format`` gives the kind and its ``config`` the card's config (no
sha256 to check). A new model kind registers its builder with
:func:`register_builder`.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from editable_deepsc.errors import CheckpointError
from editable_deepsc.zoo import registry

Builder = Callable[[registry.ModelCard, dict[str, torch.Tensor]], Any]

_BUILDERS: dict[str, str | Builder] = {
    "generator": "editable_deepsc.generator.loading:generator_from_card",
    "encoder": "editable_deepsc.inversion.encoder:E4EEncoder.from_card",
    "codec": "editable_deepsc.channel.codec_zoo:codec_from_card",
    "delta-statistics": "editable_deepsc.channel.latent_pca:LatentPCA.from_card",
    "directions": "editable_deepsc.editing.directions:AttributeDirections.from_card",
    "latent-critic": "editable_deepsc.editing.critic:LatentCritic.from_card",
    "deepjscc": "editable_deepsc.baselines.deepjscc:DeepJSCC.from_card",
    "face-net": "editable_deepsc.guidance.faces.weights:faceapi_state_from_card",
    "generator-exits": "editable_deepsc.generator.ffhq:exits_from_card",
    "face-embedding": "editable_deepsc.guidance.faces.faceres:FaceRes.from_card",
}

#: safetensors ``format`` tag → card kind, for files loaded by path.
FORMAT_KINDS: dict[str, str] = {
    "edsc-faces64": "generator",
    "edsc-teacher-dcgan64": "generator",
    "edsc-stylegan2": "generator",
    "edsc-e4e-encoder": "encoder",
    "edsc-semantic-codec": "codec",
    "edsc-delta-statistics": "delta-statistics",
    "edsc-attribute-directions": "directions",
    "edsc-latent-critic": "latent-critic",
    "edsc-deepjscc": "deepjscc",
    "edsc-mobile-stylegan": "generator",
    "edsc-mobile-stylegan-exits": "generator-exits",
    "edsc-faceres": "face-embedding",
}


#: How errors name a file of each kind ("<file> is not <label>").
KIND_LABELS: dict[str, str] = {
    "encoder": "an edsc e4e encoder checkpoint",
    "codec": "a semantic codec checkpoint",
    "delta-statistics": "a delta-statistics file",
    "directions": "an attribute-directions file",
    "latent-critic": "a latent-critic file",
    "deepjscc": "a DeepJSCC file",
}


def register_builder(kind: str, builder: str | Builder, fmt: str | None = None) -> None:
    """Register the builder of a card kind (a callable or ``"module:attr.path"``), and its file format tag."""
    _BUILDERS[kind] = builder
    if fmt:
        FORMAT_KINDS[fmt] = kind


def builder_for(kind: str) -> Builder:
    """The builder registered for ``kind``.

    Raises
    ------
    CheckpointError
        No builder for that kind.
    """
    target = _BUILDERS.get(kind)
    if target is None:
        raise CheckpointError(f"no builder for model kind {kind!r} (known: {', '.join(sorted(_BUILDERS))})")
    if isinstance(target, str):
        module, attr = target.split(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    return target


def card_for(name_or_path: str | os.PathLike, kind: str | None = None) -> registry.ModelCard:
    """The card of a registered name, or one made from a safetensors file's header (kind from ``format``).

    Raises
    ------
    CheckpointError
        Unknown name, missing file, unreadable header or a format of no known kind.
    """
    p = Path(name_or_path).expanduser()
    if not p.suffix and not p.exists():
        return registry.card(str(name_or_path))
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    md = registry.file_metadata(p)
    fmt = md.get("format", "")
    if kind in KIND_LABELS and FORMAT_KINDS.get(fmt) != kind:
        raise CheckpointError(f"{p.name} is not {KIND_LABELS[kind]} (format {fmt!r})")
    if fmt not in FORMAT_KINDS:
        raise CheckpointError(f"{p.name}: unknown safetensors format {fmt!r} (not written by editable_deepsc)")
    try:
        config = json.loads(md["config"]) if "config" in md else {}
    except ValueError:
        raise CheckpointError(f"{p.name}: unreadable config in its metadata") from None
    return registry.ModelCard(name=str(p), kind=FORMAT_KINDS[fmt], file=str(p.resolve()), sha256="",
                              licence="", source=str(p), config=config)  # fmt: skip


def load(name_or_path: str | os.PathLike, kind: str | None = None) -> Any:
    """Load a model by zoo name (sha256-checked) or path: its card's kind picks the builder.

    Parameters
    ----------
    name_or_path : str or path-like
        A registered name (repository or cache card) or a ``.safetensors`` file of this package.
    kind : str, optional
        The kind the caller expects; another kind raises :class:`CheckpointError`.

    Returns
    -------
    object
        What the kind's builder makes (an ``nn.Module`` in eval mode for every model kind).

    Raises
    ------
    CheckpointError
        Unknown name, missing/corrupt file, sha256 mismatch, another kind, or
        tensors that do not fit the card's config (quoting the card's ``fix``).
    """
    c = card_for(name_or_path, kind)
    if kind is not None and c.kind != kind:
        raise CheckpointError(f"{c.name!r} is a {c.kind}, not a {kind}")
    state = registry.load_verified(c.path, c.sha256 or None, c)
    return builder_for(c.kind)(c, state)


def fit_state(module: nn.Module, state: dict[str, torch.Tensor], label: str, cast: bool = True) -> nn.Module:
    """Load ``state`` into ``module`` after checking its keys and shapes; return ``module``.

    Parameters
    ----------
    module : nn.Module
        Built from the card's config.
    state : dict of str to Tensor
    label : str
        What the file is, for the error message (e.g. ``"codec edsc-codec-faces64-k32"``).
    cast : bool
        Cast each tensor to the module's dtype (float16 storage → float32).

    Raises
    ------
    CheckpointError
        Missing or unexpected keys, or a tensor of the wrong shape (batch-norm
        ``num_batches_tracked`` counters are not required).
    """
    ref = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing, extra = sorted(set(ref) - set(state)), sorted(set(state) - set(ref))
    if missing or extra:
        raise CheckpointError(f"{label} does not fit its config: missing {missing[:3]}, unexpected {extra[:3]}")
    for key, v in state.items():
        if tuple(v.shape) != tuple(ref[key].shape):
            raise CheckpointError(f"{label}: wrong shape for {key}: {tuple(v.shape)} (expected {tuple(ref[key].shape)})")
    module.load_state_dict({k: v.to(ref[k].dtype) for k, v in state.items()} if cast else state, strict=False)
    return module

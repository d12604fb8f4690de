"""Built-in sample images offered by the web demo.

* teacher test faces (the project's evaluation faces, by seed: never used in
  training), 64x64;
* the astronaut photo that ships with scikit-image (a real photo, 512x512,
  aligned by the face detector like any upload).

A :class:`Sample` loads lazily, so the page lists samples without loading models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from editable_deepsc.errors import BadInput
from editable_deepsc.generator.photos import real_photo
from editable_deepsc.generator.teacher import teacher_faces, test_seeds


@dataclass(frozen=True)
class Sample:
    """One built-in image.

    Attributes
    ----------
    name : str
        Identifier used by the page (``[a-z0-9-]+``).
    label : str
        What the page shows.
    load : callable
        ``() -> Tensor`` float32 (1, 3, H, W) in [-1, 1].
    """

    name: str
    label: str
    load: Callable[[], torch.Tensor]


def teacher_face_sample(seed: int) -> Sample:
    """The teacher test face of ``seed`` as a :class:`Sample`."""

    def load() -> torch.Tensor:
        return teacher_faces([int(seed)])

    return Sample(f"face-{int(seed)}", f"test face (seed {int(seed)})", load)


def astronaut_sample() -> Sample:
    """The scikit-image astronaut photo (Eileen Collins, NASA, public domain)."""

    def load() -> torch.Tensor:
        return real_photo("astronaut").unsqueeze(0)

    return Sample("astronaut", "astronaut photo (scikit-image)", load)


def builtin_samples(n_faces: int = 6) -> list[Sample]:
    """``n_faces`` teacher test faces (the first reserved test seeds) and the astronaut photo."""
    return [teacher_face_sample(s) for s in test_seeds(n_faces)] + [astronaut_sample()]


def find_sample(samples: list[Sample], name: str) -> Sample:
    """The sample called ``name``.

    Raises
    ------
    BadInput
        Unknown name.
    """
    for s in samples:
        if s.name == name:
            return s
    raise BadInput(f"unknown sample {name!r} (available: {', '.join(s.name for s in samples)})")


__all__ = ["Sample", "astronaut_sample", "builtin_samples", "find_sample", "teacher_face_sample"]

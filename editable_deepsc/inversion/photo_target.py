"""A user photo as an inversion target: the aligned crop, its transform, and the source identity.

Identity is always judged against the **photo the user gave**, never against an inversion: the
descriptor of the photo is computed once on its own descriptor chip
(:func:`~editable_deepsc.guidance.faces.descriptor_chip.descriptor_chips`, cut from the photo with
its 68 landmarks), and a generated crop is judged on the chip cut from the *same landmarks* mapped
into crop coordinates through the alignment transform. The chip is a differentiable resampling,
so the same function gives the identity loss of the inversion and the identity metric of every
report.

Example
-------
>>> target = PhotoTarget.from_photo(photo, size=256)
>>> ident = PhotoIdentity([target])
>>> ident.distance(generated_256)          # (1,) face-api distance to the source photo
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from editable_deepsc.errors import BadInput
from editable_deepsc.guidance.faces.descriptor_chip import descriptor_chips
from editable_deepsc.inversion.ffhq_align import AlignTransform, ffhq_align

#: Where ``edsc bench identity`` writes the measured same-person threshold (docs/identity.json).
IDENTITY_JSON = Path(__file__).resolve().parents[2] / "docs" / "identity.json"
#: face-api's own rule of thumb, used only when the measured threshold is not on disk.
FALLBACK_THRESHOLD = 0.6


@lru_cache(maxsize=1)
def same_person_threshold() -> tuple[float, str]:
    """The descriptor distance below which two faces count as the same person, and where it comes from.

    Returns
    -------
    (float, str)
        The Olivetti threshold at 1 % false accepts measured by ``edsc bench identity`` on
        descriptor chips (``docs/identity.json``), or face-api's 0.6 when that file is absent.
    """
    try:
        data = json.loads(IDENTITY_JSON.read_text())
        sep = data["olivetti"]["framings"]["descriptor"]["separation"]
        return float(sep["threshold"]), f"Olivetti, {100 * float(sep['far']):g}% false accepts (edsc bench identity)"
    except (OSError, KeyError, ValueError, TypeError):
        return FALLBACK_THRESHOLD, "face-api's rule of thumb (docs/identity.json not found)"


@dataclass
class PhotoTarget:
    """One face of a photo, aligned to the generator's (FFHQ) framing.

    Attributes
    ----------
    photo : torch.Tensor
        (1, 3, H, W) float32 in [-1, 1], the user's photo (any aspect ratio).
    crop : torch.Tensor
        (1, 3, S, S) float32 in [-1, 1], the aligned face.
    transform : AlignTransform
        Where the crop sits in the photo (for paste-back at the receiver).
    landmarks : torch.Tensor
        (68, 2) float32 photo pixels.
    faces_found, face_index : int
        Faces the detector found and the one used (counted from the left; default the largest).
    face_box : tuple of float
        ``(x, y, w, h)`` of the face used, photo pixels.
    face_score : float
        Its detector score.
    face_boxes : list of tuple of float
        Every face found, left to right.
    """

    photo: torch.Tensor
    crop: torch.Tensor
    transform: AlignTransform
    landmarks: torch.Tensor
    faces_found: int = 1
    face_index: int = 0
    face_box: tuple[float, float, float, float] | None = None
    face_score: float | None = None
    face_boxes: list[tuple[float, float, float, float]] | None = None

    @classmethod
    def from_photo(cls, photo: torch.Tensor, size: int = 256, face: int | None = None, aligner=None) -> PhotoTarget:
        """Detect the faces, find the chosen one's landmarks and align it (FFHQ framing, reflect-padded).

        Parameters
        ----------
        photo : torch.Tensor
            (1, 3, H, W) or (3, H, W) float32 in [-1, 1], any size and aspect ratio.
        size : int
            Side of the aligned crop.
        face : int, optional
            Which face, counting the faces found from left to right from 0; default: the largest.
        aligner : FaceAligner, optional
            Loaded detector + landmark nets to reuse.

        Raises
        ------
        NoFaceFound
            No face in the photo (the message names the photo size and the detector threshold).
        BadInput
            ``face`` is not one of the faces found, or the photo is not one RGB image.
        """
        from editable_deepsc.errors import NoFaceFound
        from editable_deepsc.guidance.faces.align import FaceAligner

        if photo.dim() == 3:
            photo = photo.unsqueeze(0)
        if photo.dim() != 4 or photo.shape[:2] != (1, 3):
            raise BadInput(f"expected one RGB photo (1, 3, H, W), got {tuple(photo.shape)}")
        photo = photo.float()
        aligner = aligner or FaceAligner()
        faces = sorted(aligner.detect(photo), key=lambda d: d.box[0])  # left to right
        h, w = photo.shape[-2:]
        if not faces:
            sides = ", ".join(str(s) for s in aligner.input_sizes)
            raise NoFaceFound(f"no face found in the {w}x{h} photo (tiny face detector at input sizes {sides}, "
                              f"score >= {aligner.score_threshold})")
        if face is None:
            index = max(range(len(faces)), key=lambda i: faces[i].box[2] * faces[i].box[3])
        elif 0 <= int(face) < len(faces):
            index = int(face)
        else:
            n = len(faces)
            raise BadInput(f"face {face} asked for, but {n} face{'s' if n > 1 else ''} found "
                           f"(0{f' to {n - 1}, left to right' if n > 1 else ''})")
        best = faces[index]
        landmarks = aligner.landmarks_in_box(photo, best.box).float()
        crop, transform = ffhq_align(photo, landmarks, size, "ffhq")
        return cls(photo=photo, crop=crop, transform=transform, landmarks=landmarks, faces_found=len(faces),
                   face_index=index, face_box=tuple(float(v) for v in best.box), face_score=float(best.score),
                   face_boxes=[tuple(float(v) for v in d.box) for d in faces])

    def crop_landmarks(self, side: int) -> torch.Tensor:
        """(68, 2) float32: the photo's landmarks in pixels of a ``side`` x ``side`` version of the crop."""
        lm = torch.cat([self.landmarks.double(), torch.ones(68, 1, dtype=torch.float64)], dim=1)
        return ((lm @ self.transform.photo_to_crop().T)[:, :2] * side).float()

    def source_chip(self) -> torch.Tensor:
        """(1, 3, 150, 150) descriptor chip cut from the photo itself."""
        return descriptor_chips(self.photo, self.landmarks.unsqueeze(0))

    def face_json(self) -> dict:
        """``{"found", "used", "box", "score", "boxes"}``: ``boxes`` lists every face left to right."""
        box = None if self.face_box is None else [round(float(v), 1) for v in self.face_box]
        score = None if self.face_score is None else round(float(self.face_score), 3)
        boxes = [[round(float(v), 1) for v in b] for b in (self.face_boxes or [])]
        return {"found": self.faces_found, "used": self.face_index, "box": box, "score": score, "boxes": boxes}


def crop_landmarks(targets: list[PhotoTarget], side: int) -> torch.Tensor:
    """(N, 68, 2) float32: each target's landmarks in pixels of a ``side`` x ``side`` generated crop."""
    return torch.stack([t.crop_landmarks(side) for t in targets])


class SecondIdentity:
    """The second descriptor (FaceRes, which no loss of the project optimises) against the source photos.

    Parameters
    ----------
    targets : list of PhotoTarget
        One per generated image, in batch order.
    descriptor : SecondDescriptor, optional
        A loaded net to reuse (by default the converted ``faceres`` net from the user cache).

    Raises
    ------
    CheckpointError
        The net is not converted (``edsc zoo convert faceres``) or its threshold not measured.
    """

    def __init__(self, targets: list[PhotoTarget], descriptor=None) -> None:
        from editable_deepsc.guidance.faces.second_descriptor import (
            DESCRIPTOR_NAME,
            SecondDescriptor,
            embedding_chips,
            second_descriptor_threshold,
        )

        self.name = DESCRIPTOR_NAME
        self.threshold = second_descriptor_threshold()
        self.descriptor = descriptor if descriptor is not None else SecondDescriptor()
        self.targets = list(targets)
        self._chips = embedding_chips
        with torch.no_grad():
            self.source = self.descriptor.embed(torch.cat([embedding_chips(t.photo, t.landmarks.unsqueeze(0))
                                                           for t in self.targets]))

    @torch.no_grad()
    def distance(self, images: torch.Tensor) -> torch.Tensor:
        """(N,) cosine distance of each generated crop (N, 3, R, R) to its source photo (same person below
        :attr:`threshold`)."""
        emb = self.descriptor.embed(self._chips(images, crop_landmarks(self.targets, images.shape[-1])))
        return 1.0 - F.cosine_similarity(emb, self.source.to(emb), dim=1)


class PhotoIdentity:
    """Identity of generated crops measured against the source photos (face-api descriptors).

    Parameters
    ----------
    targets : list of PhotoTarget
        One per generated image, in batch order.
    analyzer : FaceAnalyzer, optional
        Shared analyzer (only its recognition net is used).
    """

    def __init__(self, targets: list[PhotoTarget], analyzer=None) -> None:
        from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer

        if not targets:
            raise BadInput("PhotoIdentity needs at least one target")
        self.analyzer = analyzer if analyzer is not None else FaceAnalyzer(heads=("recognition",))
        self.targets = list(targets)
        with torch.no_grad():
            self.source = self.embed(torch.cat([t.source_chip() for t in self.targets]))

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """(N, 3, 150, 150) chips -> (N, 128) descriptors (differentiable)."""
        return self.analyzer(chips, heads=("recognition",)).embedding

    def chips(self, images: torch.Tensor) -> torch.Tensor:
        """Descriptor chips (N, 3, 150, 150) of generated crops (N, 3, R, R), any R; differentiable."""
        if images.dim() != 4 or images.shape[0] != len(self.targets) or images.shape[-1] != images.shape[-2]:
            raise BadInput(f"expected ({len(self.targets)}, 3, R, R) crops, got {tuple(images.shape)}")
        return descriptor_chips(images, crop_landmarks(self.targets, images.shape[-1]))

    def distance(self, images: torch.Tensor) -> torch.Tensor:
        """(N,) Euclidean descriptor distance of each crop to its source photo (same person below
        :func:`same_person_threshold`)."""
        return (self.embed(self.chips(images)) - self.source.to(images)).norm(dim=1)

    def loss(self, images: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) ``1 - cos`` of each crop's descriptor to its source photo's (``targets`` is ignored:
        the reference is the photo, so this fits :class:`~editable_deepsc.inversion.losses.ReconstructionLoss`)."""
        return 1.0 - F.cosine_similarity(self.embed(self.chips(images)), self.source.to(images), dim=1)


__all__ = ["PhotoIdentity", "PhotoTarget", "SecondIdentity", "crop_landmarks", "same_person_threshold"]

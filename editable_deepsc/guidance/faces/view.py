"""The part of an aligned image the face nets read: a fixed square of the generator's framing.

The face-api nets were validated on faces framed the way the faces64 teacher frames them
(:data:`~.align.FRAMINGS` ``"teacher"``: 0.78 of the FFHQ square, centred a little lower). An
FFHQ-aligned image — a generator sample or an aligned photo crop — shows much more (hair, neck,
background), and read whole the nets disagree with the mirror image far more often. A
:class:`FaceView` cuts the teacher framing out of such an image at a *fixed* place (no landmarks
needed, differentiable, the same for every image of a set), so every score of the editor, the
direction fit and the benches comes from the same view.

The ``ffhq`` set's view (its card's ``face_view``) is side 0.78, centre (0.5, 0.51): where the
teacher quad from each face's own landmarks lies, in median, on aligned photos and generator
samples. ``edsc bench faces --models ffhq --set celeba`` measures where those quads fall and how
steadily every score reads through the view (face vs mirror, nearby windows): ``docs/faces_ffhq.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editable_deepsc.errors import BadInput


@dataclass(frozen=True)
class FaceView:
    """A square window of an image, in fractions of its side.

    Attributes
    ----------
    side : float
        Window side / image side, in (0, 1].
    centre_x, centre_y : float
        Window centre / image side (0.5 = the middle).
    """

    side: float = 1.0
    centre_x: float = 0.5
    centre_y: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.side <= 1.0:
            raise BadInput(f"face view side must be in (0, 1], got {self.side}")
        for c in (self.centre_x, self.centre_y):
            if not self.side / 2 - 1e-9 <= c <= 1.0 - self.side / 2 + 1e-9:
                raise BadInput(f"face view (side {self.side}, centre {self.centre_x}, {self.centre_y}) "
                               "leaves the image")

    @property
    def whole(self) -> bool:
        """Whether the view is the whole image."""
        return self.side >= 1.0

    def box(self, size: int) -> tuple[int, int, int]:
        """``(left, top, side)`` in pixels of a ``size`` x ``size`` image (rounded, inside the image)."""
        s = max(1, min(size, int(round(self.side * size))))
        left = min(max(0, int(round(self.centre_x * size - s / 2))), size - s)
        top = min(max(0, int(round(self.centre_y * size - s / 2))), size - s)
        return left, top, s

    def crop(self, images: torch.Tensor) -> torch.Tensor:
        """The window of square images (N, 3, S, S) -> (N, 3, s, s), a view (differentiable)."""
        if self.whole:
            return images
        if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
            raise BadInput(f"a face view needs square (N, 3, S, S) images, got {tuple(images.shape)}")
        left, top, s = self.box(images.shape[-1])
        return images[..., top : top + s, left : left + s]

    def to_json(self) -> dict[str, float]:
        return {"side": self.side, "centre_x": self.centre_x, "centre_y": self.centre_y}

    @classmethod
    def from_json(cls, data: dict | None) -> FaceView:
        """A view from a set card's ``face_view`` (``None`` or ``{}``: the whole image)."""
        data = dict(data or {})
        unknown = set(data) - {"side", "centre_x", "centre_y", "note"}
        if unknown:
            raise BadInput(f"unknown face view field(s): {', '.join(sorted(unknown))}")
        data.pop("note", None)
        return cls(**{k: float(v) for k, v in data.items()})


WHOLE = FaceView()
"""The whole image (faces64: the generator already frames faces the way the nets read them)."""


def view_for_generator(generator_name: str) -> FaceView:
    """The face view of the shipped set whose generator is ``generator_name`` (the whole image otherwise)."""
    from editable_deepsc.zoo.sets import generator_set

    ms = generator_set(generator_name)
    return WHOLE if ms is None else FaceView.from_json(ms.face_view)

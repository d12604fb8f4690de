"""FFHQ-style alignment of a photo with its transform kept, and pasting an edited crop back.

:func:`ffhq_align` crops the oriented square of :func:`~editable_deepsc.guidance.faces.align.face_quad`
(the FFHQ recipe from the 68 landmarks: eye centres and mouth corners give
``x = eye_to_eye − rot90(eye_to_mouth)``, half-side ``max(2·|eye_to_eye|, 1.8·|eye_to_mouth|)``,
centre ``0.1·eye_to_mouth`` below the eyes' midpoint) out of a photo of any size and aspect ratio:

* where the square leaves the photo, the photo is reflected at its edges, and that padding is
  blended into a blurred copy (fully blurred from a third of the ramp inside the edge outwards)
  and, further out, towards the photo's median colour, so the generator sees no hard mirror seams;
* the crop is resampled (antialiased when shrinking) to any side.

It returns the crop and an :class:`AlignTransform` (the quad, i.e. an affine map between crop and
photo coordinates) that travels with the latent, so the receiver can call :func:`paste_back` to
put the (edited) face back into the original photo through a feathered mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from editable_deepsc.errors import BadInput
from editable_deepsc.guidance.faces.align import face_quad, warp_quad

BLUR_SIGMA = 0.02
"""Sigma of the padding blur, as a fraction of the crop side (FFHQ: 0.02 of the quad side)."""
BLUR_RAMP = 0.1
"""Width (fraction of the quad side, photo pixels) over which the blur fades in at the photo edge."""
MEDIAN_RAMP = 0.3
"""Distance outside the photo (fraction of the quad side) at which the padding is the median colour."""
DEFAULT_FEATHER = 0.1
"""Width of the paste-back mask's soft edge, as a fraction of the crop side."""
FACE_ELLIPSE = (0.5, 0.56, 0.34, 0.42)
"""Paste-back region ``shape="face"``: ellipse centre ``(s, t)`` and radii in FFHQ crop coordinates
(eyes at t of about 0.47 and the mouth at about 0.67 in this framing): face, forehead and the hair line,
but not the crop's background, which the generator invents and which would show as a square seam."""
MASK_SHAPES = ("square", "face")


@dataclass(frozen=True)
class AlignTransform:
    """Where an aligned crop sits in its photo.

    Attributes
    ----------
    quad : tuple of 4 (x, y) pairs
        Crop corners in photo pixels (continuous coordinates, 0 = left/top edge): top-left,
        bottom-left, bottom-right, top-right.
    size : int
        Side of the crop the alignment produced (the pasted crop may have another side).
    photo_size : tuple of int
        (height, width) of the photo.
    """

    quad: tuple[tuple[float, float], ...]
    size: int
    photo_size: tuple[int, int]

    def quad_tensor(self) -> torch.Tensor:
        """(4, 2) float64 corners."""
        return torch.tensor(self.quad, dtype=torch.float64)

    def crop_to_photo(self) -> torch.Tensor:
        """(3, 3) float64 affine map from normalised crop coordinates ``(s, t) ∈ [0, 1]²`` to photo pixels."""
        q = self.quad_tensor()
        across, down = q[3] - q[0], q[1] - q[0]
        m = torch.eye(3, dtype=torch.float64)
        m[:2, 0], m[:2, 1], m[:2, 2] = across, down, q[0]
        return m

    def photo_to_crop(self) -> torch.Tensor:
        """(3, 3) float64 inverse of :meth:`crop_to_photo`."""
        return torch.linalg.inv(self.crop_to_photo())

    @property
    def angle_degrees(self) -> float:
        """Rotation of the crop's horizontal axis in the photo (degrees, clockwise on screen)."""
        q = self.quad_tensor()
        v = q[3] - q[0]
        return math.degrees(math.atan2(float(v[1]), float(v[0])))

    @property
    def side(self) -> float:
        """Side of the quad in photo pixels."""
        q = self.quad_tensor()
        return float((q[3] - q[0]).norm())

    def to_json(self) -> dict:
        """Plain-number form (what travels to the receiver)."""
        return {"quad": [list(p) for p in self.quad], "size": self.size, "photo_size": list(self.photo_size)}

    @classmethod
    def from_json(cls, d: dict) -> "AlignTransform":
        """Inverse of :meth:`to_json` (validated)."""
        try:
            quad = tuple((float(x), float(y)) for x, y in d["quad"])
            size, (h, w) = int(d["size"]), (int(v) for v in d["photo_size"])
        except (KeyError, TypeError, ValueError) as e:
            raise BadInput(f"malformed alignment transform: {e}") from None
        if len(quad) != 4 or size < 8 or h < 1 or w < 1 or not all(map(math.isfinite, sum(quad, ()))):
            raise BadInput("malformed alignment transform: need 4 finite corners, size >= 8, photo size >= 1")
        return cls(quad, size, (h, w))

    @classmethod
    def from_quad(cls, quad: torch.Tensor, size: int, photo_size: tuple[int, int]) -> "AlignTransform":
        """From a (4, 2) tensor of corners."""
        return cls(tuple((float(x), float(y)) for x, y in quad.detach().double().cpu().tolist()), int(size),
                   (int(photo_size[0]), int(photo_size[1])))


def _crop_points(quad: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """(size, size, 2) photo-pixel coordinates of the crop's pixel centres."""
    t = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    u, v = torch.meshgrid(t, t, indexing="xy")
    q = quad.double()
    pts = q[0] + u.unsqueeze(-1) * (q[3] - q[0]) + v.unsqueeze(-1) * (q[1] - q[0])
    return pts.to(dtype)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflected borders."""
    if sigma < 0.3:
        return x
    r = max(1, int(math.ceil(3 * sigma)))
    r = min(r, x.shape[-1] - 1, x.shape[-2] - 1)
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _outside_distance(pts: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Signed distance (photo pixels) of points outside the photo rectangle; negative inside."""
    x, y = pts[..., 0], pts[..., 1]
    dx = torch.maximum(-x, x - w)
    dy = torch.maximum(-y, y - h)
    inside = torch.maximum(dx, dy)  # < 0 inside: minus the distance to the nearest edge
    outside = torch.hypot(dx.clamp_min(0), dy.clamp_min(0))
    return torch.where((dx > 0) | (dy > 0), outside, inside)


def align_quad(photo: torch.Tensor, quad: torch.Tensor, size: int = 256, blur_padding: bool = True
               ) -> tuple[torch.Tensor, AlignTransform]:
    """Crop and resample an oriented square of a photo; reflect-pad (blurred) where it leaves the photo.

    Parameters
    ----------
    photo : torch.Tensor
        (1, 3, H, W) float32 in [-1, 1], any aspect ratio.
    quad : torch.Tensor
        (4, 2) corners (top-left, bottom-left, bottom-right, top-right) in photo pixels.
    size : int
        Output side (≥ 8).
    blur_padding : bool
        Blend the reflected padding into a blurred copy and the median colour (FFHQ's recipe).

    Returns
    -------
    crop : torch.Tensor
        (1, 3, size, size) float32 in [-1, 1].
    transform : AlignTransform
    """
    photo = _as_photo(photo)
    h, w = photo.shape[-2:]
    quad = quad.detach().to(torch.float64).reshape(4, 2)
    if not torch.isfinite(quad).all():
        raise BadInput("alignment quad has non-finite corners")
    transform = AlignTransform.from_quad(quad, size, (h, w))
    if transform.side < 2.0:
        raise BadInput(f"alignment quad too small: side {transform.side:.2f} px")
    crop = warp_quad(photo, quad, size, padding_mode="reflection")
    if blur_padding:
        side = transform.side
        d = _outside_distance(_crop_points(quad, size, torch.float32), h, w)  # (size, size) photo px
        ramp = max(BLUR_RAMP * side, 3.0)
        w_blur = (d / ramp * 3.0 + 1.0).clamp(0.0, 1.0)
        if bool((w_blur > 0).any()):
            w_med = (d / max(MEDIAN_RAMP * side, 3.0)).clamp(0.0, 1.0)
            blurred = _gaussian_blur(crop, BLUR_SIGMA * size)
            crop = crop + (blurred - crop) * w_blur
            inside = d <= 0
            ref = crop[..., inside] if bool(inside.any()) else crop.flatten(2)
            median = ref.median(dim=-1).values.view(1, 3, 1, 1)
            crop = crop + (median - crop) * w_med
    return crop.clamp(-1.0, 1.0), transform


def ffhq_align(photo: torch.Tensor, landmarks: torch.Tensor, size: int = 256, framing: str = "ffhq",
               blur_padding: bool = True) -> tuple[torch.Tensor, AlignTransform]:
    """FFHQ-style aligned crop of the face whose 68 landmarks are given, and its transform.

    Parameters
    ----------
    photo : torch.Tensor
        (1, 3, H, W) float32 in [-1, 1], any aspect ratio.
    landmarks : torch.Tensor
        (68, 2) ``(x, y)`` photo pixels (face-api / iBUG order).
    size : int
        Output side.
    framing : {"ffhq", "teacher"}
        See :data:`~editable_deepsc.guidance.faces.align.FRAMINGS`.
    blur_padding : bool
        See :func:`align_quad`.

    Returns
    -------
    crop : torch.Tensor
        (1, 3, size, size) float32 in [-1, 1].
    transform : AlignTransform
    """
    if landmarks.shape != (68, 2):
        raise BadInput(f"expected (68, 2) landmarks, got {tuple(landmarks.shape)}")
    return align_quad(photo, face_quad(landmarks.double(), framing), size, blur_padding)


def align_photo(photo: torch.Tensor, size: int = 256, framing: str = "ffhq", aligner=None, **align_kwargs
                ) -> tuple[torch.Tensor, AlignTransform, torch.Tensor]:
    """Detect a face, find its landmarks and align it (:func:`ffhq_align`).

    Parameters
    ----------
    photo : torch.Tensor
        (1, 3, H, W) float32 in [-1, 1].
    size, framing
        See :func:`ffhq_align`.
    aligner : FaceAligner, optional
        Detector + landmarks (a new one is made if omitted); ``align_kwargs`` go to its ``align``.

    Returns
    -------
    crop : torch.Tensor
        (1, 3, size, size).
    transform : AlignTransform
    landmarks : torch.Tensor
        (68, 2) photo pixels.

    Raises
    ------
    NoFaceFound
        No face detected.
    """
    from editable_deepsc.guidance.faces.align import FaceAligner

    face = (aligner or FaceAligner()).align(_as_photo(photo), size=8, framing=framing, **align_kwargs)
    crop, transform = ffhq_align(photo, face.landmarks, size, framing)
    return crop, transform, face.landmarks


def paste_mask(transform: AlignTransform, feather: float = DEFAULT_FEATHER,
               crop_coords: torch.Tensor | None = None, shape: str = "square") -> torch.Tensor:
    """The feathered paste-back mask over the photo, (H, W) float32 in [0, 1].

    ``shape="square"``: 1 inside the crop's square shrunk by ``feather`` (fraction of the crop side),
    falling to 0 at the square's edge with a smoothstep. ``shape="face"``: the same inside the ellipse
    :data:`FACE_ELLIPSE`, so the photo keeps its own background.
    """
    if not 0.0 <= feather < 0.5:
        raise BadInput(f"feather must be in [0, 0.5), got {feather}")
    if shape not in MASK_SHAPES:
        raise BadInput(f"mask shape must be one of {', '.join(MASK_SHAPES)}, got {shape!r}")
    st = crop_coords if crop_coords is not None else _photo_to_crop_coords(transform, 0, 0, *transform.photo_size)
    if shape == "face":
        cs, ct, rs, rt = FACE_ELLIPSE
        r = torch.sqrt(((st[..., 0] - cs) / rs) ** 2 + ((st[..., 1] - ct) / rt) ** 2)
        edge = (1.0 - r) * min(rs, rt)  # about the distance inside the ellipse, in crop sides
    else:
        edge = torch.minimum(torch.minimum(st[..., 0], 1 - st[..., 0]), torch.minimum(st[..., 1], 1 - st[..., 1]))
    if feather == 0:
        return (edge >= 0).float()
    a = (edge / feather).clamp(0.0, 1.0)
    return (a * a * (3 - 2 * a)).float()


def _photo_to_crop_coords(transform: AlignTransform, y0: int, x0: int, y1: int, x1: int) -> torch.Tensor:
    """(y1-y0, x1-x0, 2) normalised crop coordinates of photo pixel centres in the window."""
    inv = transform.photo_to_crop()
    ys = torch.arange(y0, y1, dtype=torch.float64) + 0.5
    xs = torch.arange(x0, x1, dtype=torch.float64) + 0.5
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    s = inv[0, 0] * x + inv[0, 1] * y + inv[0, 2]
    t = inv[1, 0] * x + inv[1, 1] * y + inv[1, 2]
    return torch.stack([s, t], dim=-1)


def paste_back(photo: torch.Tensor, crop: torch.Tensor, transform: AlignTransform,
               feather: float = DEFAULT_FEATHER, shape: str = "square") -> torch.Tensor:
    """Put an (edited) aligned crop back into its photo through a feathered mask.

    Parameters
    ----------
    photo : torch.Tensor
        (1, 3, H, W) float32 in [-1, 1]: the photo the crop was aligned from.
    crop : torch.Tensor
        (1, 3, S, S) float32 in [-1, 1], any side S (e.g. the generator's output).
    transform : AlignTransform
        From :func:`ffhq_align` / :func:`align_quad` on this photo.
    feather : float
        Soft edge of the mask, fraction of the crop side (0 = hard edge).
    shape : {"square", "face"}
        Paste the whole crop, or only the face ellipse (:data:`FACE_ELLIPSE`; the photo keeps its
        background -- what ``edsc invert --paste-back`` uses).

    Returns
    -------
    torch.Tensor
        (1, 3, H, W) float32: the photo, with the crop blended in; pixels outside the quad are
        returned unchanged (bit for bit).
    """
    photo = _as_photo(photo)
    if crop.dim() != 4 or crop.shape[0] != 1 or crop.shape[1] != 3 or crop.shape[-1] != crop.shape[-2]:
        raise BadInput(f"expected one square RGB crop (1, 3, S, S), got {tuple(crop.shape)}")
    h, w = photo.shape[-2:]
    if tuple(transform.photo_size) != (h, w):
        raise BadInput(f"transform is for a {transform.photo_size[1]}x{transform.photo_size[0]} photo, got {w}x{h}")
    q = transform.quad_tensor()
    lo, hi = q.min(dim=0).values, q.max(dim=0).values
    x0, y0 = max(0, int(math.floor(lo[0]))), max(0, int(math.floor(lo[1])))
    x1, y1 = min(w, int(math.ceil(hi[0])) + 1), min(h, int(math.ceil(hi[1])) + 1)
    out = photo.clone()
    if x1 <= x0 or y1 <= y0:
        return out
    st = _photo_to_crop_coords(transform, y0, x0, y1, x1)
    mask = paste_mask(transform, feather, crop_coords=st, shape=shape).to(photo.dtype)
    c = crop.to(photo.dtype)
    shrink = crop.shape[-1] / max(transform.side, 1.0)  # crop pixels per photo pixel
    if shrink > 2.0:  # antialias: bring the crop to twice its footprint first (bilinear sampling then
        side = max(8, int(round(2.0 * crop.shape[-1] / shrink)))  # barely aliases and keeps upsampled crops sharp)
        c = F.interpolate(c, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    grid = (st * 2 - 1).to(photo.dtype).unsqueeze(0)
    sampled = F.grid_sample(c, grid, mode="bilinear", padding_mode="border", align_corners=False)
    win = out[..., y0:y1, x0:x1]
    out[..., y0:y1, x0:x1] = win + (sampled - win) * mask
    return out


def _as_photo(photo: torch.Tensor) -> torch.Tensor:
    if photo.dim() == 3:
        photo = photo.unsqueeze(0)
    if photo.dim() != 4 or photo.shape[0] != 1 or photo.shape[1] != 3:
        raise BadInput(f"expected one RGB photo (1, 3, H, W), got {tuple(photo.shape)}")
    if min(photo.shape[-2:]) < 8:
        raise BadInput(f"photo too small: {tuple(photo.shape[-2:])}")
    return photo.float()

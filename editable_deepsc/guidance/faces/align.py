"""Face detection and alignment for user photos.

Pipeline: face-api's tiny face detector (tried at several input sizes, and with the photo on a
larger grey canvas when the face fills the frame) → 68 landmarks on a square crop around the
best box (refined once around the first landmarks) → an FFHQ-style oriented square (from the eye
and mouth positions) resampled to any size.

Two framings of that square are built in:

* ``"ffhq"`` — the FFHQ dataset's recipe: side ``2·max(2·|eye-to-eye|, 1.8·|eye-to-mouth|)``,
  centred ``0.1·eye-to-mouth`` below the eyes' midpoint, rotated so the eyes are level.
* ``"teacher"`` — the same construction scaled to how the built-in teacher generator frames its
  64×64 faces (side ×0.78, centre 0.14·eye-to-mouth below the eyes; medians over 200 teacher test
  faces), so an aligned photo looks like a generator face to the inversion encoder and the nets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from editable_deepsc.errors import BadInput, NoFaceFound
from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
from editable_deepsc.guidance.faces.detector import IOU_THRESHOLD, Detection, TinyFaceDetector, non_max_suppression
from editable_deepsc.guidance.faces.weights import load_into

FRAMINGS: dict[str, tuple[float, float]] = {"ffhq": (1.0, 0.1), "teacher": (0.78, 0.14), "descriptor": (0.7, 0.5)}
"""Framing name → (scale of the FFHQ square's side, centre shift along eye-to-mouth).
``"descriptor"`` is the tighter chip the identity descriptor is computed on (see
:mod:`~editable_deepsc.guidance.faces.descriptor_chip`)."""

DETECTOR_INPUT_SIZES: tuple[int, ...] = (416, 224)
"""Detector resolutions tried: 416 (face-api's default) finds small faces, 224 large close-ups."""
CANVAS_SCALES: tuple[float, ...] = (1.0, 2.0)
"""The photo is tried as is (padded square) and centred on a grey canvas this many times its side."""


SMALL_FACE_THRESHOLD = 0.05
"""Detector score a generator-sized image (e.g. 64x64) must reach, at best over the canvases
:data:`SMALL_FACE_CANVASES` and its mirror image, to count as a face. The tiny detector scores a
tight 64 px crop low, so the bar is far lower than for photos (0.5): 2 of 200 held-out teacher
faces stay below it. On its own it would pass some pixel noise, hence :data:`MAX_ROUGHNESS`."""
SMALL_FACE_CANVASES: tuple[float, ...] = (2.0, 3.0, 1.5, 1.0)
"""Grey canvas sizes (× the image side) the small-image face check tries, most useful first."""
MIN_STD = 0.02
"""An image whose pixel standard deviation (in [-1, 1] units) is below this is flat: no face."""
MAX_ROUGHNESS = 1.0
"""Pixel noise: mean absolute difference of neighbouring pixels over the standard deviation. White
noise scores about 1.1 or more; 200 teacher faces at most 0.34, and 0.86 with Gaussian noise
(sigma 0.15) added. A generator-sized image above this is refused as noise."""


def roughness(image: torch.Tensor) -> float:
    """Mean absolute neighbour difference over the standard deviation of one image (1, 3, H, W)."""
    x = image.float()
    d = (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return float(d / 2 / x.std().clamp_min(1e-8))


@dataclass
class AlignedFace:
    """An aligned face crop and where it came from.

    Attributes
    ----------
    image : torch.Tensor
        (1, 3, size, size) float32 in [-1, 1].
    landmarks : torch.Tensor
        (68, 2) landmarks in pixels of the original photo.
    quad : torch.Tensor
        (4, 2) corners of the crop in the photo: top-left, bottom-left, bottom-right, top-right.
    detection : Detection
        The detector's box ``(x, y, w, h)`` in photo pixels and its score.
    faces_found : int
        How many faces the detector found in the photo.
    index : int
        Which of them this is (0 = the highest score; faces are ordered by score).
    """

    image: torch.Tensor
    landmarks: torch.Tensor
    quad: torch.Tensor
    detection: Detection
    faces_found: int = 1
    index: int = 0


def face_quad(landmarks: torch.Tensor, framing: str = "ffhq") -> torch.Tensor:
    """The oriented square of a face from its landmarks.

    Parameters
    ----------
    landmarks : torch.Tensor
        (68, 2) or (N, 68, 2) float, ``(x, y)`` pixels.
    framing : {"ffhq", "teacher", "descriptor"}
        See :data:`FRAMINGS`.

    Returns
    -------
    torch.Tensor
        (4, 2) or (N, 4, 2) corners: top-left, bottom-left, bottom-right, top-right.
    """
    if framing not in FRAMINGS:
        raise BadInput(f"unknown framing {framing!r} (known: {', '.join(FRAMINGS)})")
    scale, shift = FRAMINGS[framing]
    lm = landmarks.unsqueeze(0) if landmarks.dim() == 2 else landmarks
    eye_l, eye_r = lm[:, 36:42].mean(dim=1), lm[:, 42:48].mean(dim=1)
    eye_mid = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = (lm[:, 48] + lm[:, 54]) / 2 - eye_mid
    # horizontal axis: the eye line, tilted by the eye-to-mouth direction turned 90°
    right = eye_to_eye + torch.stack([eye_to_mouth[:, 1], -eye_to_mouth[:, 0]], dim=-1)
    right = right / right.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    half = scale * torch.maximum(2.0 * eye_to_eye.norm(dim=-1), 1.8 * eye_to_mouth.norm(dim=-1))
    x = right * half.unsqueeze(-1)
    y = torch.stack([-x[:, 1], x[:, 0]], dim=-1)  # x turned 90° clockwise on screen: "down"
    c = eye_mid + shift * eye_to_mouth
    quad = torch.stack([c - x - y, c - x + y, c + x + y, c + x - y], dim=1)
    return quad[0] if landmarks.dim() == 2 else quad


def warp_quad(image: torch.Tensor, quad: torch.Tensor, size: int, padding_mode: str = "reflection") -> torch.Tensor:
    """Resample the square ``quad`` of ``image`` to a (1, 3, size, size) crop (bilinear, antialiased).

    Parameters
    ----------
    image : torch.Tensor
        (1, 3, H, W) float32 in [-1, 1].
    quad : torch.Tensor
        (4, 2) corners (top-left, bottom-left, bottom-right, top-right) in pixels
        (continuous coordinates: 0 = the left/top edge).
    size : int
        Output side in pixels.
    padding_mode : {"reflection", "zeros", "border"}
        What fills parts of the square outside the photo (``"zeros"`` is mid-grey).

    Returns
    -------
    torch.Tensor
        (1, 3, size, size) float32 in [-1, 1].
    """
    if size < 8:
        raise BadInput(f"crop size must be at least 8, got {size}")
    quad = quad.to(dtype=image.dtype, device=image.device)
    side = float((quad[3] - quad[0]).norm())
    shrink = side / size
    if shrink > 1.5:  # antialias: shrink the photo first, then sample
        h, w = image.shape[-2:]
        nh, nw = max(1, round(h / shrink)), max(1, round(w / shrink))
        image = F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        quad = quad * torch.tensor([nw / w, nh / h], dtype=quad.dtype, device=quad.device)
    h, w = image.shape[-2:]
    t = (torch.arange(size, dtype=image.dtype, device=image.device) + 0.5) / size  # output pixel centres in [0, 1]
    u, v = torch.meshgrid(t, t, indexing="xy")  # u: across (x), v: down (y)
    origin, down, across = quad[0], quad[1] - quad[0], quad[3] - quad[0]
    pts = origin + u.unsqueeze(-1) * across + v.unsqueeze(-1) * down  # (size, size, 2) pixels
    grid = torch.stack([pts[..., 0] / w * 2 - 1, pts[..., 1] / h * 2 - 1], dim=-1).unsqueeze(0)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    return out.clamp(-1.0, 1.0)


def _square_box_quad(cx: float, cy: float, side: float) -> torch.Tensor:
    h = side / 2
    return torch.tensor([[cx - h, cy - h], [cx - h, cy + h], [cx + h, cy + h], [cx + h, cy - h]], dtype=torch.float32)


class FaceAligner:
    """Detect, landmark and align the main face of a photo.

    Parameters
    ----------
    analyzer : FaceAnalyzer, optional
        Supplies the landmark net (shared with the caller's analyzer if given).
    score_threshold : float
        Minimum detector confidence (0.5, face-api's default).
    input_sizes : tuple of int
        Detector resolutions tried (multiples of 32).
    canvas_scales : tuple of float
        Canvas sizes tried, relative to the photo's longer side (1.0 = the photo itself).
    """

    def __init__(
        self,
        analyzer: FaceAnalyzer | None = None,
        score_threshold: float = 0.5,
        input_sizes: tuple[int, ...] = DETECTOR_INPUT_SIZES,
        canvas_scales: tuple[float, ...] = CANVAS_SCALES,
    ) -> None:
        if not 0.0 < score_threshold < 1.0:
            raise BadInput(f"score_threshold must be in (0, 1), got {score_threshold}")
        self.analyzer = analyzer if analyzer is not None else FaceAnalyzer(heads=("landmarks",))
        self.score_threshold = score_threshold
        self.input_sizes = tuple(input_sizes)
        self.canvas_scales = tuple(canvas_scales)
        self._detector: TinyFaceDetector | None = None

    def sharing(self, score_threshold: float | None = None,
                canvas_scales: tuple[float, ...] | None = None) -> "FaceAligner":
        """Another aligner with other settings that shares this one's loaded nets."""
        other = FaceAligner(self.analyzer, score_threshold or self.score_threshold, self.input_sizes,
                            canvas_scales or self.canvas_scales)
        other._detector = self._detector if self._detector is not None else self.detector
        return other

    @property
    def detector(self) -> TinyFaceDetector:
        """The tiny face detector (loaded from the zoo on first use)."""
        if self._detector is None:
            self._detector = load_into(TinyFaceDetector(), "detector")
        return self._detector

    @torch.no_grad()
    def detect(self, image: torch.Tensor) -> list[Detection]:
        """All faces found in a photo, best score first.

        Parameters
        ----------
        image : torch.Tensor
            (1, 3, H, W) or (3, H, W) float32 in [-1, 1].

        Returns
        -------
        list of Detection
            Boxes ``(x, y, w, h)`` in pixels of ``image``; the union over detector sizes,
            de-duplicated by non-maximum suppression. Canvases are tried in order until one
            gives a detection.
        """
        image = _as_batch(image)
        h, w = image.shape[-2:]
        found: list[Detection] = []
        for scale in self.canvas_scales:
            side = int(round(max(h, w) * scale))
            if scale == 1.0:
                canvas, ox, oy = image, 0, 0
            else:
                ox, oy = (side - w) // 2, (side - h) // 2
                canvas = image.new_zeros(1, 3, side, side)  # mid-grey
                canvas[..., oy : oy + h, ox : ox + w] = image
            for size in self.input_sizes:
                for d in self.detector.to(canvas.device).detect(canvas, size, self.score_threshold):
                    x, y, bw, bh = d.box
                    found.append(Detection(d.score, (x - ox, y - oy, bw, bh)))
            if found:  # a larger canvas is only needed when the photo itself gives nothing
                break
        keep = non_max_suppression([d.box for d in found], [d.score for d in found], IOU_THRESHOLD)
        return [found[i] for i in keep]

    @torch.no_grad()
    def landmarks_in_box(self, image: torch.Tensor, box: tuple[float, float, float, float], refine: int = 1) -> torch.Tensor:
        """68 landmarks (68, 2) in photo pixels for the face in ``box`` (x, y, w, h).

        The landmark net sees a square crop (grey outside the photo) centred on the box with the
        box's longer side; with ``refine`` > 0 the crop is then re-centred on the landmarks'
        bounding box (side 1.1 × its longer side) and the net run again.
        """
        image = _as_batch(image)
        net_size = self.analyzer.net("landmarks").input_size
        x, y, bw, bh = box
        cx, cy, side = x + bw / 2, y + bh / 2, max(bw, bh)
        for step in range(refine + 1):
            quad = _square_box_quad(cx, cy, side).to(image.device)
            crop = warp_quad(image, quad, net_size, padding_mode="zeros")
            lm = self.analyzer.landmarks(crop)[0] * (side / net_size) + quad[0]
            lo, hi = lm.min(dim=0).values, lm.max(dim=0).values
            cx, cy = float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2)
            side = 1.1 * float((hi - lo).max())
        return lm

    def align(self, image: torch.Tensor, size: int = 256, framing: str = "ffhq", face: int = 0) -> AlignedFace:
        """Align one face of a photo (by default the highest-scoring one).

        Parameters
        ----------
        image : torch.Tensor
            (1, 3, H, W) or (3, H, W) float32 in [-1, 1].
        size : int
            Side of the aligned crop in pixels (any size ≥ 8).
        framing : {"ffhq", "teacher"}
            See :data:`FRAMINGS`.
        face : int
            Which face, counting from 0 in order of detector score.

        Returns
        -------
        AlignedFace

        Raises
        ------
        NoFaceFound
            The detector finds no face above ``score_threshold``.
        BadInput
            ``face`` is not one of the faces found.
        """
        image = _as_batch(image)
        if framing not in FRAMINGS:
            raise BadInput(f"unknown framing {framing!r} (known: {', '.join(FRAMINGS)})")
        detections = self.detect(image)
        if not detections:
            h, w = image.shape[-2:]
            raise NoFaceFound(
                f"no face found in the {w}x{h} image (tiny face detector, score >= {self.score_threshold})"
            )
        if not 0 <= int(face) < len(detections):
            n = len(detections)
            raise BadInput(f"face {face} asked for, but {n} face{'s' if n > 1 else ''} found "
                           f"(choose 0{f' to {n - 1}' if n > 1 else ''})")
        best = detections[int(face)]
        lm = self.landmarks_in_box(image, best.box)
        quad = face_quad(lm, framing)
        crop = warp_quad(image, quad, size)
        return AlignedFace(image=crop, landmarks=lm, quad=quad, detection=best, faces_found=len(detections),
                           index=int(face))


def align_face(image: torch.Tensor, size: int = 256, framing: str = "ffhq", aligner: FaceAligner | None = None,
               face: int = 0) -> AlignedFace:
    """Detect and align one face of a photo (see :meth:`FaceAligner.align`)."""
    return (aligner or FaceAligner()).align(image, size=size, framing=framing, face=face)


def small_face_score(image: torch.Tensor, aligner: FaceAligner | None = None) -> float:
    """Best detector score of a generator-sized image over grey canvases and its mirror image.

    Stops at the first score of at least :data:`SMALL_FACE_THRESHOLD`.

    Parameters
    ----------
    image : torch.Tensor
        Float32 (1, 3, R, R) in [-1, 1].
    """
    base = aligner or FaceAligner()
    best = 0.0
    for scale in SMALL_FACE_CANVASES:
        probe = base.sharing(score_threshold=0.01, canvas_scales=(scale,))
        for img in (image, image.flip(-1)):
            found = probe.detect(img)
            if found:
                best = max(best, float(found[0].score))
            if best >= SMALL_FACE_THRESHOLD:
                return best
    return best


def check_small_face(image: torch.Tensor, aligner: FaceAligner | None = None) -> float:
    """Refuse a generator-sized image (e.g. 64x64) without a face; return its detector score.

    Three tests: not flat (std ≥ :data:`MIN_STD`), not pixel noise (:func:`roughness` ≤
    :data:`MAX_ROUGHNESS`), and :func:`small_face_score` ≥ :data:`SMALL_FACE_THRESHOLD`.

    Parameters
    ----------
    image : torch.Tensor
        (1, 3, R, R) float32 in [-1, 1].

    Raises
    ------
    NoFaceFound
    """
    image = _as_batch(image)
    h, w = image.shape[-2:]
    if float(image.std()) < MIN_STD:
        raise NoFaceFound(f"no face found in the {w}x{h} image (it is a flat colour)")
    if roughness(image) > MAX_ROUGHNESS:
        raise NoFaceFound(f"no face found in the {w}x{h} image (it looks like pixel noise)")
    score = small_face_score(image, aligner)
    if score < SMALL_FACE_THRESHOLD:
        raise NoFaceFound(f"no face found in the {w}x{h} image (face detector score {score:.3f} < "
                          f"{SMALL_FACE_THRESHOLD:g})")
    return score


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise BadInput(f"expected one RGB image (1, 3, H, W), got {tuple(image.shape)}")
    if min(image.shape[-2:]) < 8:
        raise BadInput(f"image too small: {tuple(image.shape[-2:])}")
    return image.float()

"""``edsc bench faces --models ffhq --set celeba``: what the face nets read on real, FFHQ-aligned faces.

On ``n`` CelebA photos (000001 upwards, photos without a detected face skipped and counted; never
the held-out 000801-000999), each aligned to the FFHQ framing at 256 px exactly as the inversion
does (:meth:`~editable_deepsc.inversion.photo_target.PhotoTarget.from_photo`), and on ``n``
generator samples at the set's 256 px exit (seeded ``z``, truncation 1.0), every face-net score is
read through the set's :class:`~editable_deepsc.guidance.faces.view.FaceView` and its reliability
measured (:func:`~editable_deepsc.guidance.faces.view_reliability.measure_view_reliability`:
face vs mirror, agreement across nearby windows, spread). :func:`verdicts` then says which
attributes read well on real photos, on generator samples and on the faces64 teacher faces
(``docs/faces_reliability.json``), by one stated rule; :func:`write_page` renders
``docs/faces_ffhq.md`` from the result.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from editable_deepsc.errors import BadInput, NoFaceFound
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.guidance.faces.reliability import SCORE_UNITS, SIGNED
from editable_deepsc.guidance.faces.view import FaceView
from editable_deepsc.guidance.faces.view_reliability import crop_perturbations, measure_view_reliability
from editable_deepsc.rng import make_generator

#: The faces64 reliability result (``edsc bench faces``) the verdicts compare with.
FACES64_JSON = Path(__file__).resolve().parents[2] / "docs" / "faces_reliability.json"
#: The rule of :func:`verdicts`: a score reads well if its face-vs-mirror r and its mean r across
#: the perturbed windows both reach these values (faces64: mirror r only; crops were not measured).
MIRROR_MIN = 0.8
CROP_MIN = 0.9
#: A probability above 0.5 on fewer than this share of the faces is too rare to judge ("rare").
RARE_BELOW = 0.05
#: Aligned crop side (the ``ffhq`` set's work size).
CROP_SIZE = 256


class AlignedCelebA:
    """CelebA photos 000001 upwards, FFHQ-aligned, in batches; photos without a face are skipped.

    Only the training and validation photos (000001-000800) are ever read: iteration stops at
    000800 even if fewer than ``n`` faces were found by then.

    Parameters
    ----------
    n : int
        Faces wanted.
    first : int
        First photo number (1..800).
    batch_size : int
        Crops per yielded batch.
    size : int
        Side of the aligned crops.
    read : callable, optional
        ``read(number) -> (1, 3, H, W)`` photo in [-1, 1] (default: from the CelebA wheel).
    align : callable, optional
        ``align(photo) -> (1, 3, size, size)`` crop, raising :class:`NoFaceFound` when there is no
        face (default :meth:`PhotoTarget.from_photo` with one shared aligner).

    Attributes
    ----------
    used, no_face : list of int
        Photo numbers aligned and skipped so far.
    seconds : float
        Time spent reading and aligning.
    shown : list of torch.Tensor
        The first few aligned crops (1, 3, size, size), for a figure.

    Raises
    ------
    HeldOutRefused
        ``first`` is a held-out photo (000801-000999).
    BadInput
        ``n`` or ``first`` out of range, or ``n`` larger than the photos from ``first`` to 000800.
    """

    def __init__(self, n: int, first: int = 1, batch_size: int = 25, size: int = CROP_SIZE,
                 read: Callable[[int], torch.Tensor] | None = None,
                 align: Callable[[torch.Tensor], torch.Tensor] | None = None, keep: int = 6) -> None:  # fmt: skip
        from editable_deepsc.data.celeba import SPLITS, HeldOutRefused

        last = SPLITS["val"][1]
        if first >= SPLITS["heldout"][0]:
            raise HeldOutRefused(f"CelebA {first:06d} is held out (000801-000999): this bench reads 000001-000800 only")
        if not 1 <= first <= last:
            raise BadInput(f"first CelebA photo must be in 1..{last}, got {first}")
        if not 1 <= n <= last - first + 1:
            raise BadInput(f"--n must be in 1..{last - first + 1} (CelebA {first:06d}-{last:06d}), got {n}")
        if batch_size < 1:
            raise BadInput(f"batch size must be at least 1, got {batch_size}")
        self.n, self.first, self.last, self.batch_size, self.size, self.keep = n, first, last, batch_size, size, keep
        self._read, self._align = read or _read_celeba, align or _photo_aligner(size)
        self.used: list[int] = []
        self.no_face: list[int] = []
        self.seconds = 0.0
        self.shown: list[torch.Tensor] = []

    def __iter__(self) -> Iterator[torch.Tensor]:
        batch: list[torch.Tensor] = []
        for i in range(self.first, self.last + 1):
            if len(self.used) >= self.n:
                break
            t0 = time.perf_counter()
            try:
                crop = self._align(self._read(i))
            except NoFaceFound:
                self.no_face.append(i)
                continue
            finally:
                self.seconds += time.perf_counter() - t0
            if crop.shape != (1, 3, self.size, self.size):
                raise BadInput(f"aligned crop of CelebA {i:06d} has shape {tuple(crop.shape)}, "
                               f"expected (1, 3, {self.size}, {self.size})")  # fmt: skip
            self.used.append(i)
            if len(self.shown) < self.keep:
                self.shown.append(crop)
            batch.append(crop)
            if len(batch) == self.batch_size:
                yield torch.cat(batch)
                batch = []
        if batch:
            yield torch.cat(batch)


def _read_celeba(index: int) -> torch.Tensor:
    from editable_deepsc.data.celeba import celeba_jpeg, decode_photo

    return decode_photo(celeba_jpeg(index))


def _photo_aligner(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    from editable_deepsc.guidance.faces.align import FaceAligner
    from editable_deepsc.inversion.photo_target import PhotoTarget

    aligner: list[FaceAligner] = []

    def align(photo: torch.Tensor) -> torch.Tensor:
        if not aligner:
            aligner.append(FaceAligner())
        return PhotoTarget.from_photo(photo, size, aligner=aligner[0]).crop

    return align


class GeneratorSamples:
    """``n`` generator samples (seeded ``z``, no truncation), clamped to [-1, 1], in batches.

    Attributes
    ----------
    seconds : float
        Time spent synthesising.
    shown : list of torch.Tensor
        The first few samples (1, 3, S, S).
    """

    def __init__(self, generator: StyleGenerator, n: int, seed: int = 0, batch_size: int = 25, keep: int = 6) -> None:
        if n < 1 or batch_size < 1:
            raise BadInput(f"n and batch size must be at least 1, got {n}, {batch_size}")
        self.generator, self.n, self.seed, self.batch_size, self.keep = generator, n, seed, batch_size, keep
        self.seconds = 0.0
        self.shown: list[torch.Tensor] = []

    @torch.no_grad()
    def __iter__(self) -> Iterator[torch.Tensor]:
        z = torch.randn(self.n, self.generator.z_dim, generator=make_generator(self.seed))
        for chunk in z.split(self.batch_size):
            t0 = time.perf_counter()
            images = self.generator(chunk, truncation=1.0).clamp(-1.0, 1.0)
            self.seconds += time.perf_counter() - t0
            if len(self.shown) < self.keep:
                self.shown += list(images[: self.keep - len(self.shown)].split(1))
            yield images


def faces64_reference(path: Path = FACES64_JSON) -> dict[str, Any] | None:
    """``{"command", "n_faces", "mirror": {score: r}, "gender_flip_rate"}`` of the faces64 bench, or None."""
    try:
        data = json.loads(Path(path).read_text())
        return {"command": data.get("command"), "n_faces": data["n_faces"],
                "mirror": {k: float(v["r"]) for k, v in data["mirror"].items()},
                "gender_flip_rate": float(data["gender_flip_rate"]),
                "happy_bimodality": data.get("happy_bimodality")}  # fmt: skip
    except (OSError, KeyError, ValueError, TypeError):
        return None


def reads_well(mirror_r: float, crop_r: float | None = None) -> bool:
    """The rule: mirror r ≥ :data:`MIRROR_MIN` and (when measured) mean crop r ≥ :data:`CROP_MIN`."""
    return mirror_r >= MIRROR_MIN and (crop_r is None or crop_r >= CROP_MIN)


def verdict(measured: dict, score: str) -> str:
    """``"yes"`` (reads well), ``"no"``, or ``"rare"`` for one score of a :func:`measure_view_reliability` result.

    ``"rare"``: a probability above 0.5 on fewer than :data:`RARE_BELOW` of the faces — the
    correlations then mostly measure noise around 0 and say little about reading the attribute.
    """
    share = measured["spread"][score].get("above_0.5")
    if share is not None and share < RARE_BELOW:
        return "rare"
    return "yes" if reads_well(measured["mirror"][score]["r"], measured["crop"][score]["r_mean"]) else "no"


CHANGES = {("yes", "no"): "now reads", ("yes", "yes"): "still reads", ("no", "yes"): "no longer reads",
           ("no", "no"): "still does not", ("rare", "yes"): "rare on these faces", ("rare", "no"): "rare on these faces"}
"""(real photos, faces64) verdicts → the change column."""


def verdicts(real: dict, generated: dict | None, faces64: dict | None) -> dict[str, dict[str, Any]]:
    """Per score: whether it reads well on real photos, generator samples and faces64, and what changed.

    Parameters
    ----------
    real, generated : dict
        :func:`measure_view_reliability` results (``generated`` may be None).
    faces64 : dict or None
        :func:`faces64_reference` (judged by mirror r alone; no spread check).

    Returns
    -------
    dict
        Per score: ``real``, ``generated`` (:func:`verdict`; None when not measured), ``faces64``
        (``"yes"``/``"no"``/None) and ``change`` (:data:`CHANGES`, or ``"faces64 not measured"``).
    """
    out = {}
    for k in real["mirror"]:
        r = verdict(real, k)
        g = verdict(generated, k) if generated else None
        f = ("yes" if reads_well(faces64["mirror"][k]) else "no") if faces64 and k in faces64["mirror"] else None
        out[k] = {"real": r, "generated": g, "faces64": f,
                  "change": "faces64 not measured" if f is None else CHANGES[(r, f)]}  # fmt: skip
    return out


def run_faces_ffhq_bench(
    generator: StyleGenerator,
    view: FaceView,
    n: int = 200,
    seed: int = 0,
    batch_size: int = 25,
    photos: AlignedCelebA | None = None,
    analyzer=None,
    figure: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Reliability of every score through ``view`` on real photos and on generator samples.

    Parameters
    ----------
    generator : StyleGenerator
        The set's generator at its work size (256 px for ``ffhq``:
        :func:`~editable_deepsc.generator.exit_view.work_generator`).
    view : FaceView
        The set's face view.
    n : int
        CelebA faces and generator samples (each).
    seed : int
        Seed of the generator's ``z``.
    batch_size : int
    photos : AlignedCelebA, optional
        The photo stream (default ``AlignedCelebA(n, batch_size=batch_size)``).
    analyzer : FaceAnalyzer, optional
    figure : str or Path, optional
        Write an image (PNG/JPEG): the first aligned photos (top) and samples (bottom) with the view (green)
        and each face's teacher square from the landmarks the nets read (red).
    progress : bool

    Returns
    -------
    dict
        ``real`` and ``generated`` (:func:`measure_view_reliability`), ``celeba`` (photo numbers
        used and skipped), ``faces64`` (:func:`faces64_reference`), ``verdicts``, ``rule``,
        ``view``, ``perturbations`` (name and pixel box at the crop size), ``timing``, ``meta``.
    """
    photos = photos if photos is not None else AlignedCelebA(n, batch_size=batch_size)
    samples = GeneratorSamples(generator, n, seed=seed, batch_size=batch_size)
    perturbations = crop_perturbations(view)
    t0 = time.perf_counter()
    real = measure_view_reliability(photos, view, analyzer, perturbations, total=photos.n, progress=progress,
                                    desc="faces (CelebA)")  # fmt: skip
    t1 = time.perf_counter()
    generated = measure_view_reliability(samples, view, analyzer, perturbations, total=n, progress=progress,
                                         desc="faces (generator)")  # fmt: skip
    t2 = time.perf_counter()
    faces64 = faces64_reference()
    size = real["image_size"]
    result: dict[str, Any] = {
        "real": real,
        "generated": generated,
        "celeba": {"first": photos.first, "last_read": max(photos.used + photos.no_face),
                   "used": photos.used, "no_face": photos.no_face},  # fmt: skip
        "faces64": faces64,
        "verdicts": verdicts(real, generated, faces64),
        "rule": {"mirror_min": MIRROR_MIN, "crop_min": CROP_MIN,
                 "rare_below": RARE_BELOW,
                 "text": f"a score reads well when its face-vs-mirror r >= {MIRROR_MIN} and its mean r across the "
                         f"perturbed windows >= {CROP_MIN}; a probability above 0.5 on fewer than "
                         f"{100 * RARE_BELOW:g}% of the faces is 'rare' (too rare to judge); faces64: mirror r only "
                         "(crops and spread were not measured there)"},  # fmt: skip
        "view": view.to_json(),
        "view_box_px": list(view.box(size)),
        "perturbations": [{"name": p.name, "box_px": list(p.box(size)), "resample_px": p.resample,
                           "view": p.view.to_json()} for p in perturbations],  # fmt: skip
        "timing": {"celeba_seconds": t1 - t0, "align_seconds_per_photo": photos.seconds / max(1, len(photos.used)),
                   "generator_seconds": t2 - t1, "synthesis_seconds_per_sample": samples.seconds / n,
                   "total_seconds": t2 - t0},  # fmt: skip
        "meta": {"generator": generator.name, "image_size": size, "n": n, "seed": seed, "truncation": 1.0,
                 "samples_clamped": True, "threads": torch.get_num_threads(), "machine": platform.machine(),
                 "date": time.strftime("%Y-%m-%d"), "score_units": {k: SCORE_UNITS[k] for k in real["mirror"]},
                 "signed_scores": list(SIGNED)},  # fmt: skip
    }
    if figure is not None:
        result["figure"] = str(write_figure(photos.shown, samples.shown, view, figure))
    return result


def _box_outline(img: torch.Tensor, corners: torch.Tensor, colour: tuple[float, float, float], width: int = 1) -> None:
    """Draw the closed polygon ``corners`` (K, 2) pixels onto ``img`` (3, H, W) in place."""
    h, w = img.shape[-2:]
    c = torch.tensor(colour, dtype=img.dtype).view(3, 1)
    for a, b in zip(corners, corners.roll(-1, dims=0)):
        t = torch.linspace(0, 1, int(4 * max(h, w)), dtype=torch.float64).unsqueeze(1)
        pts = (a.double() * (1 - t) + b.double() * t).round().long()
        for dx in range(width):
            for dy in range(width):
                x, y = (pts[:, 0] + dx).clamp(0, w - 1), (pts[:, 1] + dy).clamp(0, h - 1)
                img[:, y, x] = c


def write_figure(photos: list[torch.Tensor], samples: list[torch.Tensor], view: FaceView, path: str | Path,
                 tile: int = 160) -> Path:  # fmt: skip
    """Aligned photos (top row) and generator samples (bottom) with the view and the teacher squares.

    Written as PNG or JPEG by the suffix of ``path``, ``tile`` px per face.

    Green: the face view (the window the nets read); red: each face's teacher square from the
    landmarks the landmark net reads in the view (where the view would sit if it followed the face).
    """
    from editable_deepsc.guidance.faces.align import face_quad
    from editable_deepsc.guidance.faces.analyzer import FaceAnalyzer
    from editable_deepsc.imaging.io import save_image

    k = min(len(photos), len(samples)) if samples else len(photos)
    if k == 0:
        raise BadInput("no faces to draw")
    net = FaceAnalyzer(heads=("landmarks",))
    rows = []
    for group in (photos[:k], samples[:k]):
        if not group:
            continue
        x = torch.cat(group)
        size = x.shape[-1]
        left, top, side = view.box(size)
        with torch.no_grad():
            lm = net(view.crop(x), heads=("landmarks",)).landmarks + torch.tensor([left, top])
        quads = face_quad(lm, "teacher") * (tile / size)
        tiles = F.interpolate(x, size=(tile, tile), mode="area").clone()
        s = tile / size
        box = torch.tensor([[left, top], [left, top + side], [left + side, top + side], [left + side, top]]) * s
        for i in range(len(tiles)):
            _box_outline(tiles[i], box, (-1.0, 1.0, -1.0), width=2)
            _box_outline(tiles[i], quads[i], (1.0, -1.0, -1.0))
        rows.append(torch.cat(list(tiles), dim=-1))
    path = Path(path)
    save_image(torch.cat(rows, dim=-2), path)
    return path


# ---------------------------------------------------------------------- the page
def _fmt(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _yes(v: str | None) -> str:
    return "n/a" if v is None else v


def _spread_cell(s: dict[str, float], unit: str) -> str:
    d = 2 if unit in ("probability", "ratio") else 1
    return f"{s['median']:.{d}f} ({s['p10']:.{d}f}–{s['p90']:.{d}f})"


def markdown_tables(result: dict[str, Any]) -> str:
    """The verdict, reliability and spread tables as Markdown."""
    real, gen, f64, ver = result["real"], result["generated"], result["faces64"], result["verdicts"]
    units = result["meta"]["score_units"]
    rank = {"yes": 0, "no": 1, "rare": 2}
    order = sorted(real["mirror"], key=lambda k: (rank[ver[k]["real"]], -real["mirror"][k]["r"]))
    lines = ["| score | unit | real: mirror r | real: crop r, mean (worst) | real: crop mean abs. diff. | "
             "generated: mirror r | generated: crop r, mean (worst) | faces64: mirror r | reads well: real / "
             "generated / faces64 | on real photos vs faces64 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for k in order:
        rc, gc = real["crop"][k], gen["crop"][k]
        f = f64["mirror"].get(k) if f64 else None
        v = ver[k]
        lines.append(f"| {k} | {units[k]} | {real['mirror'][k]['r']:.2f} | {rc['r_mean']:.2f} ({rc['r_min']:.2f}) | "
                     f"{rc['mad_mean']:.3g} | {gen['mirror'][k]['r']:.2f} | {gc['r_mean']:.2f} ({gc['r_min']:.2f}) | "
                     f"{_fmt(f)} | {_yes(v['real'])} / {_yes(v['generated'])} / {_yes(v['faces64'])} | "
                     f"{v['change']} |")
    lines += ["", "| score | unit | real photos: median (p10–p90) | share > 0.5 | generator samples: median (p10–p90) "
              "| share > 0.5 |", "|---|---|---|---:|---|---:|"]
    for k in order:
        rs, gs = real["spread"][k], gen["spread"][k]
        share = lambda s: f"{100 * s['above_0.5']:.0f}%" if "above_0.5" in s else ""  # noqa: E731
        lines.append(f"| {k} | {units[k]} | {_spread_cell(rs, units[k])} | {share(rs)} | "
                     f"{_spread_cell(gs, units[k])} | {share(gs)} |")
    return "\n".join(lines) + "\n"


def _fit_line(name: str, fit: dict) -> str:
    c = lambda key: f"{fit[key]['median']:.3f} ({fit[key]['p10']:.3f}–{fit[key]['p90']:.3f})"  # noqa: E731
    return f"| {name} | {c('centre_x')} | {c('centre_y')} | {c('side')} |"


def markdown_page(result: dict[str, Any]) -> str:
    """The whole ``docs/faces_ffhq.md`` page, every number from ``result``."""
    meta, real, gen, f64, ver = result["meta"], result["real"], result["generated"], result["faces64"], result["verdicts"]
    cel, tim, view = result["celeba"], result["timing"], result["view"]
    left, top, side = result["view_box_px"]
    now = [k for k, v in ver.items() if v["change"] == "now reads"]
    still = [k for k, v in ver.items() if v["change"] == "still reads"]
    lost = [k for k, v in ver.items() if v["change"] == "no longer reads"]
    never = [k for k, v in ver.items() if v["change"] == "still does not"]
    rare = [k for k, v in ver.items() if v["change"] == "rare on these faces"]
    perts = "; ".join(f"{p['name']} (box {p['box_px'][0]}, {p['box_px'][1]}, side {p['box_px'][2]} px"
                      + (f", resampled to {p['box_px'][2] + p['resample_px']} px" if p["resample_px"] else "") + ")"
                      for p in result["perturbations"])  # fmt: skip
    names = lambda ks: ", ".join(f"**{k}**" for k in ks) or "none"  # noqa: E731
    s = real["spread"]
    text = [
        "# What the face nets read on real faces (`ffhq` set)",
        "",
        f"Regenerate: `{meta.get('command', 'edsc bench faces --models ffhq --set celeba')}` ({meta['date']}, "
        f"{meta['threads']} thread(s), {meta['machine']}; {tim['total_seconds'] / 60:.1f} min wall-clock on the shared "
        "2-core machine). The faces64 counterpart is the reliability section of [faces.md](faces.md).",
        "",
        "## What is measured",
        "",
        f"* **Real photos**: CelebA {cel['used'][0]:06d} upwards, the first {real['n']} photos with a detected face "
        f"(read up to {cel['last_read']:06d}; no face found in {len(cel['no_face'])}: "
        f"{', '.join(f'{i:06d}' for i in cel['no_face']) or 'none'}); the held-out 000801–000999 are never read. "
        f"Each is FFHQ-aligned to {meta['image_size']} px as the inversion does (`PhotoTarget.from_photo`, "
        f"{tim['align_seconds_per_photo']:.2f} s per photo with detection).",
        f"* **Generator samples**: {gen['n']} samples of `{meta['generator']}` at its {meta['image_size']} px exit, "
        f"z from seed {meta['seed']}, truncation {meta['truncation']:g}, clamped to [-1, 1] "
        f"({tim['synthesis_seconds_per_sample']:.2f} s per sample).",
        f"* **The face view**: side {view['side']}, centre ({view['centre_x']}, {view['centre_y']}) of the image — "
        f"the box ({left}, {top}) side {side} px of a {meta['image_size']} px crop. Every score is read through it "
        "by the landmark, expression and age/gender nets.",
        "* **Mirror consistency**: the view and its mirror image analysed separately, Pearson r of each score between "
        "them (yaw and roll sign-corrected), as on faces64.",
        f"* **Agreement across crops**: each score through the view vs through {len(result['perturbations'])} nearby "
        f"windows — {perts} — Pearson r (mean over the windows, worst in brackets) and the mean absolute "
        "difference in the score's unit (averaged over the windows).",
        f"* **Rule**: {result['rule']['text']}.",
        "",
        "## Verdict",
        "",
        f"On real photos through the view, {names([k for k, v in ver.items() if v['real'] == 'yes'])} read well; "
        f"too rare to judge on these photos: {names([k for k, v in ver.items() if v['real'] == 'rare'])}.",
        "",
        f"* Read well on real photos but not on faces64: {names(now)}.",
        f"* Read well on both: {names(still)}.",
        f"* Read well on faces64 but not on real photos: {names(lost)}.",
        f"* Read well on neither: {names(never)}.",
        f"* Too rare on the real photos to judge: {names(rare)}.",
        "",
        markdown_tables(result),
        "Gender flips under mirroring (P(male) crosses 0.5): "
        f"{100 * real['gender_flip_rate']:.1f}% of real photos, {100 * gen['gender_flip_rate']:.1f}% of generator "
        f"samples" + (f", {100 * f64['gender_flip_rate']:.1f}% of faces64 teacher faces." if f64 else ".")
        + f" P(happy) on real photos: {100 * real['happy_bimodality']['below_0.1']:.0f}% below 0.1, "
        f"{100 * real['happy_bimodality']['above_0.9']:.0f}% above 0.9 (generator samples: "
        f"{100 * gen['happy_bimodality']['below_0.1']:.0f}% / {100 * gen['happy_bimodality']['above_0.9']:.0f}%). "
        f"Share of real photos with P(male) > 0.5: {100 * s['p_male']['above_0.5']:.0f}%; with P(happy) > 0.5: "
        f"{100 * s['happy']['above_0.5']:.0f}%; with P(neutral) > 0.5: {100 * s['neutral']['above_0.5']:.0f}%.",
        "",
        "A landmark score can pass the rule and still vary little on real photos; the spread table shows how much of "
        "each score's range the photos cover. The 'rare' expressions are seldom above 0.5 on these photos, so their "
        "correlations mostly measure noise near 0: the bench cannot say whether the nets read them. The FFHQ "
        f"alignment levels the eyes, so roll spans only {s['roll']['p10']:.1f}° to {s['roll']['p90']:.1f}° (p10–p90) "
        "on the aligned photos: it is read, but little of it is left to edit.",
        "",
        "## Where the view sits on the faces",
        "",
        "The teacher square of each face (the framing the nets were validated on, from the 68 landmarks the landmark "
        "net reads in the view), in fractions of the image: median (p10–p90).",
        "",
        "| faces | centre x | centre y | side |",
        "|---|---|---|---|",
        _fit_line("real photos", real["view_fit"]),
        _fit_line("generator samples", gen["view_fit"]),
        f"| the view | {view['centre_x']} | {view['centre_y']} | {view['side']} |",
        "",
    ]
    if result.get("figure"):
        text += [f"![aligned photos (top) and generator samples (bottom) with the view]({_rel(result['figure'])})",
                 "",
                 "Top: aligned CelebA photos; bottom: generator samples. Green: the face view; red: each face's teacher "
                 "square from the landmarks the net reads.", ""]  # fmt: skip
    text += [f"Speed: {1000 * real['seconds_per_image'] / real['passes_per_image']:.0f} ms per analysis of one face "
             f"(three nets) on real photos; {real['passes_per_image']} analyses per face (view, mirror, "
             f"{len(result['perturbations'])} windows).", ""]
    if f64:
        text += [f"faces64 figures: `{f64['command']}` ({f64['n_faces']} teacher faces, mirror consistency only).", ""]
    return "\n".join(text)


def _rel(figure: str) -> str:
    p = Path(figure)
    return f"img/{p.name}" if p.parent.name == "img" else str(p)


def write_page(result: dict[str, Any], path: str | Path) -> Path:
    """Write the Markdown page ``path`` and its ``.json`` twin (atomically)."""
    from editable_deepsc.imaging.io import atomic_write

    path = Path(path)
    text, data = markdown_page(result), json.dumps(result, indent=1) + "\n"
    atomic_write(path.with_suffix(".json"), lambda tmp: Path(tmp).write_text(data))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


__all__ = ["AlignedCelebA", "GeneratorSamples", "faces64_reference", "markdown_page", "markdown_tables",
           "reads_well", "run_faces_ffhq_bench", "verdict", "verdicts", "write_figure", "write_page"]

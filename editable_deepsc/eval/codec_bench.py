"""Semantic codec benchmark: learned analog codec vs uncoded PCA vs quantised latent over 5G LDPC + QAM.

For every codec size ``k``, channel (AWGN, Rayleigh block fading with the gain
known at the receiver) and SNR, the same held-out latents are sent by

* ``semantic`` -- the trained SNR-aware codec (:func:`~editable_deepsc.channel.codec_zoo.load_codec`);
* ``uncoded-pca`` -- the top ``2k`` whitened PCA coordinates sent as they are,
  LMMSE at the receiver (:class:`~editable_deepsc.channel.codec.PCAUncodedCodec`);
* ``digital-ldpc`` -- the top PCA coordinates quantised and sent with 5G LDPC +
  QAM, MCS adapted to the SNR (:func:`~editable_deepsc.channel.digital_latent.digital_latent_link`);
* ``digital-ideal`` -- the same quantiser at the channel capacity, error-free
  (:func:`~editable_deepsc.channel.digital_latent.ideal_digital`).

Each uses exactly ``k`` complex channel uses with unit average power. The
metrics compare the receiver's latent and image with the *noise-free* ones
(the latent that was sent and its image): latent NMSE
``‖ŵ − w‖² / E‖w − w̄‖²`` (the variance of latents of the same kind, estimated
on training seeds by :func:`source_spectrum`), latent SDR ``−10·log10(NMSE)``
beside the Gaussian-source bound ``10·log10(1 + SNR)`` (one real source sample
per real channel use) and the OPTA bound for that latent spectrum at ``k`` uses
(AWGN), image SSIM, LPIPS (the labelled EfficientNet proxy unless the standard
weights are installed) and face-api identity similarity when its weights are
in the zoo.
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from editable_deepsc.channel import make_channel
from editable_deepsc.channel.codec import PCAUncodedCodec, SemanticCodec
from editable_deepsc.channel.codec_zoo import cbr
from editable_deepsc.channel.digital_latent import digital_latent_link, ideal_digital, opta_sdr_db
from editable_deepsc.channel.snr import check_snr
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.base import StyleGenerator
from editable_deepsc.generator.teacher import face_latents, random_train_seeds, teacher_faces, test_seeds
from editable_deepsc.guidance.identity import IdentityLoss
from editable_deepsc.metrics.image import ssim
from editable_deepsc.metrics.lpips import LPIPS, normalize_channels
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.vocab import CHANNELS

SNRS_DB: tuple[float, ...] = (0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 20.0)
METHODS: tuple[str, ...] = ("semantic", "uncoded-pca", "digital-ldpc", "digital-ideal")
TABLE_START = "<!-- codec-table:start -->"
TABLE_END = "<!-- codec-table:end -->"


@torch.no_grad()
def held_out_latents(
    generator: StyleGenerator, n: int, source: str = "auto", encoder: Any = None
) -> tuple[torch.Tensor, str]:
    """``n`` held-out latents (n, num_ws, w_dim) from the reserved test seeds, and how they were made.

    Parameters
    ----------
    source : {"auto", "inverted", "mapped"}
        ``inverted``: encoder inversions of teacher test faces (what the system
        sends before editing); ``mapped``: ``mapping(z)`` of test seeds in every
        layer; ``auto``: inverted when an encoder is given, else mapped.
    encoder : callable, optional
        Images (N, 3, H, W) → W+ (the inversion encoder).
    """
    if n < 1:
        raise BadInput(f"n must be >= 1, got {n}")
    if source not in ("auto", "inverted", "mapped"):
        raise BadInput(f"unknown latent source {source!r} (choose from: auto, inverted, mapped)")
    if source == "auto":
        source = "inverted" if encoder is not None else "mapped"
    if source == "inverted":
        if encoder is None:
            raise BadInput("latent source 'inverted' needs an inversion encoder")
        faces = teacher_faces(test_seeds(n))
        return torch.cat([encoder(c).float() for c in faces.split(32)]), "inverted"
    w = generator.mapping(face_latents(test_seeds(n, offset=500_000)))
    return w[:, None].expand(n, generator.num_ws, generator.w_dim).contiguous().float(), "mapped"


@torch.no_grad()
def source_spectrum(
    generator: StyleGenerator, source: str, encoder: Any = None, n: int = 4000, seed: int = 0
) -> torch.Tensor:
    """Covariance eigenvalues (D,) float64, descending, of latents made like the held-out ones.

    Drawn from *training* seeds (``n`` mapped latents, or ``n // 4`` inversions
    of training faces), so the held-out set is not used to build its own bound.
    """
    rng = make_generator(derive_seed(seed, "codec-bench-spectrum"))
    if source == "inverted":
        faces = teacher_faces(random_train_seeds(max(n // 4, 64), rng))
        w = torch.cat([encoder(c).float() for c in faces.split(64)])
    else:
        w = generator.mapping(face_latents(random_train_seeds(n, rng)))
        w = w[:, None].expand(n, generator.num_ws, generator.w_dim)
    x = w.reshape(w.shape[0], -1).double()
    x = x - x.mean(0)
    cov = x.T @ x / (x.shape[0] - 1)
    return torch.linalg.eigvalsh(cov).flip(0).clamp_min(0.0)


class _ImageMetrics:
    """SSIM, LPIPS (proxy unless standard weights exist) and identity of received vs one fixed set of reference images.

    The reference images' proxy-LPIPS features and identity descriptors are
    computed once (every row of the benchmark compares against the same
    noise-free images).
    """

    def __init__(self, ref: torch.Tensor, identity: bool = True, lpips_size: int = 128):
        self.ref = ref
        self.lpips = LPIPS(proxy_input_size=lpips_size)
        self.lpips_size = lpips_size if self.lpips.is_proxy else None
        self._norm = normalize_channels
        self._ref_maps = None
        if self.lpips.is_proxy:
            with torch.no_grad():
                self._ref_maps = [normalize_channels(f) for f in self.lpips._features.maps(ref)]
        self.identity = None
        if identity:
            try:
                self.identity = IdentityLoss()
                with torch.no_grad():
                    self._ref_id = self.identity.embed(ref)
            except Exception:  # noqa: BLE001 - face-api weights missing: no identity column
                self.identity = None

    @torch.no_grad()
    def __call__(self, rx: torch.Tensor) -> dict[str, float | None]:
        if self._ref_maps is not None:
            stages = [
                (self._norm(f) - r).pow(2).sum(1).mean(dim=(1, 2))
                for f, r in zip(self.lpips._features.maps(rx), self._ref_maps)
            ]
            lp = float(torch.stack(stages).mean(0).mean())
        else:
            lp = float(self.lpips(rx, self.ref).mean())
        ident = None
        if self.identity is not None:
            ident = float(torch.nn.functional.cosine_similarity(self.identity.embed(rx), self._ref_id, dim=1).mean())
        return {"ssim": float(ssim(rx, self.ref).mean()), "lpips": lp, "identity": ident}


def run_codec_bench(
    generator: StyleGenerator,
    codecs: dict[int, SemanticCodec],
    snrs: tuple[float, ...] = SNRS_DB,
    channels: tuple[str, ...] = CHANNELS,
    n: int = 32,
    seed: int = 0,
    source: str = "auto",
    encoder: Any = None,
    methods: tuple[str, ...] = METHODS,
    identity: bool = True,
    lpips_size: int = 128,
    progress: bool = True,
    photos: Any = None,
) -> dict[str, Any]:
    """Run the benchmark; return ``{"rows": [...], "meta": {...}}`` (JSON-serialisable).

    Parameters
    ----------
    generator : StyleGenerator
        The generator all codecs serve (images of the latents).
    codecs : dict of int to SemanticCodec
        Trained codecs by ``k``; the baselines use each codec's PCA statistics.
    snrs, channels : tuples
        Grid (dB; ``"awgn"``/``"rayleigh"``).
    n : int
        Held-out latents.
    seed : int
        Root seed of the channel noise.
    source, encoder
        See :func:`held_out_latents`.
    methods : tuple of str
        Subset of :data:`METHODS`.
    identity : bool
        Add face-api identity similarity when available.
    lpips_size : int
        Side the proxy LPIPS resizes images to (128: a third of the cost of 224).
    progress : bool
        Show a progress bar.
    photos : PhotoBench, optional
        A photo set's held-out data and judges (:func:`~editable_deepsc.eval.codec_bench_photos.photo_bench`):
        then ``generator`` is the synthesis judged on (the work size), the latents are the
        edited photo latents, identity is measured against the source photos and edit kept
        is reported; ``source``/``encoder``/``identity`` are not used and there is no OPTA column.
    """
    snrs = tuple(check_snr(s) for s in snrs)
    for ch in channels:
        make_channel(ch)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise BadInput(f"unknown method(s) {bad} (choose from: {', '.join(METHODS)})")
    if not codecs:
        raise BadInput("no codec to benchmark")
    if photos is not None:
        w, src, spectrum = photos.data.w_plus, "edited-photos", None
        source_var = photos.source_variance
        ref, metrics = photos.metrics.ref, photos.metrics
        n = w.shape[0]
    else:
        w, src = held_out_latents(generator, n, source, encoder)
        spectrum = source_spectrum(generator, src, encoder, seed=seed)
        source_var = float(spectrum.sum())
        with torch.no_grad():
            ref = generator.synthesis(w)
        metrics = _ImageMetrics(ref, identity, lpips_size)
    rows: list[dict[str, Any]] = []
    res = int(getattr(generator, "resolution", ref.shape[-1]))
    grid = [(k, ch, s, m) for k in sorted(codecs) for ch in channels for s in snrs for m in methods]
    t0 = time.perf_counter()
    for k, ch, snr, method in tqdm(grid, desc="bench codec", disable=not progress):
        codec = codecs[k]
        pca = codec.pca
        rng = make_generator(derive_seed(seed, "codec-bench", k, ch, snr, method))
        extra: dict[str, Any] = {}
        with torch.no_grad():
            if method == "semantic":
                w_hat = codec(w, make_channel(ch), snr, rng=rng)
            elif method == "uncoded-pca":
                w_hat = PCAUncodedCodec(pca, k)(w, make_channel(ch), snr, rng=rng)
            elif method == "digital-ldpc":
                r = digital_latent_link(w, pca, k, ch, snr, rng=rng)
                w_hat = r.w_hat
                extra = {
                    "mcs": f"{r.modulation} r={r.code_rate:.2f}",
                    "payload_bits": r.payload_bits,
                    "block_error_rate": round(r.block_error_rate, 4),
                    "mcs_reliable": r.mcs_reliable,
                }
            else:  # digital-ideal
                snr_i = torch.full((n,), snr)
                if ch == "rayleigh":
                    h = make_channel("rayleigh").generate(n, 1, rng=rng)[:, 0]
                    snr_i = snr + 10.0 * torch.log10(h.abs().pow(2).clamp_min(1e-12))
                w_hat, budget = ideal_digital(w, pca, k, snr_i)
                extra = {"mean_bits": float(budget.float().mean())}
            img = torch.cat([generator.synthesis(c) for c in w_hat.split(16)]).clamp(-1, 1)
        nmse = float((w_hat - w).reshape(n, -1).pow(2).sum(1).mean()) / source_var
        row = {
            "k": k,
            "cbr": cbr(k, res),
            "channel": ch,
            "snr_db": snr,
            "method": method,
            "nmse": nmse,
            "sdr_db": -10.0 * math.log10(max(nmse, 1e-12)),
            "bound_db": 10.0 * math.log10(1.0 + 10.0 ** (snr / 10.0)),
            "opta_db": opta_sdr_db(spectrum, k, snr) if ch == "awgn" and spectrum is not None else None,
            **metrics(img),
            **extra,
        }
        rows.append(row)
    meta = {
        "command": None,
        "generator": getattr(generator, "name", "?"),
        "codecs": {str(k): getattr(c, "card_config", {}).get("name", None) or f"k={k}" for k, c in codecs.items()},
        "image_size": res,
        "n_latents": n,
        "latent_source": src,
        "latent_variance": source_var,
        "latent_effective_dims_99": None if spectrum is None else int((spectrum.cumsum(0) / spectrum.sum() < 0.99).sum()) + 1,
        "test_seeds": None if photos is not None else [test_seeds(1).start, test_seeds(1).start + n] if src == "inverted"
        else [test_seeds(1, offset=500_000).start, test_seeds(1, offset=500_000).start + n],
        **({} if photos is None else photos.meta()),
        "seed": seed,
        "snrs_db": list(snrs),
        "channels": list(channels),
        "methods": list(methods),
        "lpips_metric": metrics.lpips.name,
        "lpips_is_proxy": metrics.lpips.is_proxy,
        "lpips_proxy_input_size": metrics.lpips_size,
        "identity_metric": ("face-api descriptor distance to the source photo" if photos is not None else
                            "face-api recognition cosine similarity" if metrics.identity is not None else None),
        "proxies": [metrics.lpips.name] if metrics.lpips.is_proxy else [],
        "seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
    }
    return {"rows": rows, "meta": meta}


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _photo_note(meta: dict[str, Any]) -> str:
    """The photo set's noise-free reference line (empty for other sources)."""
    if "reference_identity_distance" not in meta:
        return ""
    return (f"Sent latents: hybrid inversions of CelebA {meta['photos'][0]} … {meta['photos'][1]}, each edited "
            f"({', '.join(meta['edits'])}, cycled); without noise the edits meet their target on "
            f"{100 * meta['reference_edits_met']:.0f}% and the images are at face-api distance "
            f"{meta['reference_identity_distance']:.3f} from the source photos ({100 * meta['reference_identity_kept']:.0f}% "
            f"under the same-person threshold {meta['identity_threshold']:.3f})"
            + (f"; by FaceRes, the descriptor nothing optimises, at {meta['reference_second_distance']:.3f} "
               f"({100 * meta['reference_second_kept']:.0f}% under its threshold {meta['second_threshold']:.3f})"
               if meta.get("second_threshold") is not None else "")
            + f". Latent NMSE is relative to the "
            f"variance of {meta['latent_variance_from']}; no OPTA bound (no full spectrum for 11,776 coordinates).\n\n")


def _kept(r: dict[str, Any]) -> str:
    """Same-person shares: face-api, and FaceRes when measured."""
    out = f"{100 * r['identity_kept']:.0f}%"
    return out + (f", {100 * r['second_kept']:.0f}%" if "second_kept" in r else "")


def _identity_cells(r: dict[str, Any]) -> str:
    if "edit_kept" not in r:
        return _fmt(r["identity"])
    kept = "–" if r["edit_kept"] is None else f"{100 * r['edit_kept']:.0f}%"
    second = f" · FaceRes {r['second_distance']:.3f} / {100 * r['second_kept']:.0f}%" if "second_kept" in r else ""
    return f"{r['identity_distance']:.3f} / {100 * r['identity_kept']:.0f}%{second} | {kept}"


def markdown_tables(result: dict[str, Any], default_k: int | None = None) -> str:
    """Markdown: a summary for ``default_k`` (AWGN + Rayleigh), then one long table per (k, channel)."""
    rows = result["rows"]
    meta = result["meta"]
    lp = "LPIPS-proxy" if meta.get("lpips_is_proxy", True) else "LPIPS"
    out = []
    ks = sorted({r["k"] for r in rows})
    dk = default_k if default_k in ks else ks[0]
    for ch in meta["channels"]:
        sub = [r for r in rows if r["k"] == dk and r["channel"] == ch]
        if not sub:
            continue
        methods = [m for m in METHODS if any(r["method"] == m for r in sub)]
        out.append(f"### Summary: k = {dk} (CBR {sub[0]['cbr']:.5f} = 1/{1 / sub[0]['cbr']:.0f}), {ch.upper()}\n")
        second = "second_kept" in sub[0]
        cell = "SDR dB / SSIM" + ((" / same person (face-api" + (", FaceRes" if second else "") + ") / edit kept")
                                  if "edit_kept" in sub[0] else "")
        head = "| SNR dB | bound 10·log10(1+SNR) dB | " + " | ".join(f"{m} {cell}" for m in methods) + " |"
        out.append(head)
        out.append("|" + "---|" * (2 + len(methods)))
        for snr in meta["snrs_db"]:
            cells = []
            for m in methods:
                r = next((x for x in sub if x["snr_db"] == snr and x["method"] == m), None)
                cells.append("–" if r is None else f"{r['sdr_db']:.2f} / {r['ssim']:.3f}" + (
                    f" / {_kept(r)} / {_fmt(None if r['edit_kept'] is None else 100 * r['edit_kept'], 0)}%"
                    if "edit_kept" in r else ""))
            bound = 10.0 * math.log10(1.0 + 10.0 ** (snr / 10.0))
            out.append(f"| {snr:g} | {bound:.2f} | " + " | ".join(cells) + " |")
        out.append("")
    for k in ks:
        for ch in meta["channels"]:
            sub = [r for r in rows if r["k"] == k and r["channel"] == ch]
            if not sub:
                continue
            out.append(f"### k = {k} (CBR {sub[0]['cbr']:.5f}), {ch.upper()}\n")
            photo = "edit_kept" in sub[0]
            ident = ("identity dist. to photo / same person | edit kept" if photo else "identity")
            out.append(
                f"| SNR dB | method | latent NMSE | latent SDR dB | bound dB | OPTA dB | SSIM | {lp} | {ident} | digital MCS / BLER |"
            )
            out.append("|---|---|---|---|---|---|---|---|---|" + ("---|" if photo else "") + "---|")
            for r in sub:
                dig = ""
                if "mcs" in r:
                    dig = f"{r['mcs']}, {r['payload_bits']} bits, BLER {r['block_error_rate']:.2f}"
                    if not r.get("mcs_reliable", True):
                        dig += " (no MCS < 10% BLER)"
                elif "mean_bits" in r:
                    dig = f"{r['mean_bits']:.0f} bits (capacity)"
                out.append(
                    f"| {r['snr_db']:g} | {r['method']} | {r['nmse']:.4f} | {r['sdr_db']:.2f} | {r['bound_db']:.2f} | "
                    f"{_fmt(r['opta_db'], 2)} | {r['ssim']:.3f} | {r['lpips']:.3f} | {_identity_cells(r)} | {dig} |"
                )
            out.append("")
    return "\n".join(out)


def write_results(result: dict[str, Any], out: str | Path, default_k: int | None = None) -> tuple[Path, Path]:
    """Write ``out`` as Markdown (the tables between markers, inside an existing page if there is one) + ``.json``.

    If ``out`` already exists and holds the markers, only the part between them
    is replaced (so hand-written prose around the generated table survives).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md = out if out.suffix == ".md" else out.with_suffix(".md")
    js = md.with_suffix(".json")
    js.write_text(json.dumps(result, indent=1) + "\n")
    meta = result["meta"]
    block = (
        f"{TABLE_START}\n\nGenerated by `{meta.get('command') or 'edsc bench codec'}` "
        f"({meta['n_latents']} held-out {meta['latent_source']} latents of `{meta['generator']}`, seed {meta['seed']}, "
        f"{meta['seconds']:.0f} s; LPIPS column: `{meta['lpips_metric']}`"
        f"{' at ' + str(meta['lpips_proxy_input_size']) + ' px' if meta.get('lpips_proxy_input_size') else ''}"
        f"{' — a proxy, not comparable with published LPIPS' if meta.get('lpips_is_proxy', True) else ''}).\n\n"
        f"{_photo_note(meta)}"
        f"{markdown_tables(result, default_k)}\n{TABLE_END}"
    )
    if md.is_file() and TABLE_START in (text := md.read_text()) and TABLE_END in text:
        head, rest = text.split(TABLE_START, 1)
        _, tail = rest.split(TABLE_END, 1)
        md.write_text(head + block + tail)
    else:
        md.write_text(f"# Semantic channel codec benchmark\n\n{block}\n")
    return md, js

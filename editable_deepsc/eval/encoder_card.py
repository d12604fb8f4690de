"""The inversion encoder's section of the model card (``docs/models.md``, ``edsc zoo card``).

The encoder (``edsc-e4e-faces64``) inverts the same held-out teacher faces as the
card's W+ vs single-w table (:func:`~editable_deepsc.eval.generator_quality.inversion_targets`)
in one forward pass (:func:`~editable_deepsc.inversion.invert.invert`, ``method="encoder"``);
the section reports its size, its reconstruction quality on those faces
(:func:`~editable_deepsc.inversion.invert.reconstruction_stats`), how it was
trained (its card and training log) and the table of ``edsc bench invert``
(``docs/inversion.md``) when that page exists.
"""

from __future__ import annotations

from pathlib import Path

from editable_deepsc.eval import generator_quality as gq
from editable_deepsc.eval.invert_bench import training_section, encoder_training_info, read_table
from editable_deepsc.generator.loading import load_generator
from editable_deepsc.inversion.encoder import ENCODER_NAME, load_encoder
from editable_deepsc.inversion.invert import invert
from editable_deepsc.zoo import registry
from editable_deepsc.zoo.sets import load_set

#: The generator the card's encoder serves (the default model set's).
DEFAULT_GENERATOR = load_set().member("generator")


def cache_key(n: int) -> str:
    """Cache file name of :func:`encoder_numbers` for ``n`` faces (changes with the encoder's and generator's weights)."""
    enc, gen = registry.card(ENCODER_NAME).sha256[:16], registry.card(DEFAULT_GENERATOR).sha256[:16]
    return f"encoder-v1-{enc}-{gen}-{n}.json"


def encoder_numbers(n: int) -> dict:
    """Encoder inversion of the ``n`` held-out faces: parameters and mean PSNR / SSIM / proxy LPIPS / identity.

    Returns
    -------
    dict
        ``encoder``, ``generator``, ``parameters``, ``n``, ``psnr_db``, ``ssim``,
        ``lpips``, ``lpips_metric``, ``identity`` (None without the face nets) and the
        per-image ``psnr_per_image``.
    """
    generator = load_generator(DEFAULT_GENERATOR)
    encoder = load_encoder(ENCODER_NAME, generator=generator)
    out = invert(gq.inversion_targets(n), method="encoder", generator=generator, encoder=encoder, with_stats=True)
    stats = out.stats
    ids = [s["identity"] for s in stats if s["identity"] is not None]
    mean = lambda k: sum(s[k] for s in stats) / len(stats)  # noqa: E731
    return {
        "encoder": ENCODER_NAME,
        "generator": DEFAULT_GENERATOR,
        "parameters": sum(p.numel() for p in encoder.parameters()),
        "n": n,
        "psnr_db": mean("psnr"),
        "ssim": mean("ssim"),
        "lpips": mean("lpips"),
        "lpips_metric": stats[0]["lpips_metric"],
        "identity": sum(ids) / len(ids) if len(ids) == len(stats) else None,
        "psnr_per_image": [s["psnr"] for s in stats],
    }


def encoder_markdown(numbers: dict, bench_page: str | Path = "docs/inversion.md") -> str:
    """The Markdown of the section from :func:`encoder_numbers` (plus the bench table of ``bench_page`` if present)."""
    identity = (
        f", face-api identity similarity {numbers['identity']:.3f}" if numbers.get("identity") is not None else ""
    )
    lines = [
        f"`{numbers['encoder']}` ({numbers['parameters']:,} parameters) maps an aligned face to the W+ latent of "
        f"`{numbers['generator']}` in one forward pass (`invert(images, method=\"encoder\")`).",
        "",
        f"On the {numbers['n']} held-out teacher faces of the table above (one forward pass, no optimisation): "
        f"PSNR {numbers['psnr_db']:.2f} dB, SSIM {numbers['ssim']:.3f}, {numbers['lpips_metric']} "
        f"{numbers['lpips']:.4f}{identity}.",
    ]
    training = training_section(encoder_training_info(numbers["encoder"]))
    if training:
        lines += ["", training.replace("## Encoder training", "### Training").strip()]
    table = read_table(bench_page)
    if table:
        lines += ["", f"### Encoder vs optimisation (`edsc bench invert`, from `{Path(bench_page).as_posix()}`)", "",
                  table]  # fmt: skip
    return "\n".join(lines) + "\n"

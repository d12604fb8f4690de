"""``edsc bench codec``: semantic codec vs uncoded PCA vs quantised latent over 5G LDPC + QAM."""

from __future__ import annotations

import json
import shlex

import click

from editable_deepsc.cli.options import bench_options, member_option, models_option, set_member, set_threads
from editable_deepsc.eval.codec_bench import CHANNELS, METHODS, SNRS_DB


def _floats(text: str) -> tuple[float, ...]:
    from editable_deepsc.errors import BadInput

    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise BadInput(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> tuple[int, ...]:
    from editable_deepsc.errors import BadInput

    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise BadInput(f"expected comma-separated integers, got {text!r}") from None


@click.command("codec")
@click.option("--k", "ks", default=None, help="Comma-separated k values (default: every built-in codec).")
@click.option("--snr", "snrs", default=",".join(f"{s:g}" for s in SNRS_DB), show_default=True, help="SNRs in dB.")
@click.option("--channel", "channels", default=",".join(CHANNELS), show_default=True, help="awgn,rayleigh")
@click.option("--method", "methods", default=",".join(METHODS), show_default=True, help="Methods to run.")
@click.option("--n", "n", default=32, show_default=True, type=int, help="Held-out latents.")
@models_option()
@member_option("--generator", "generator_name", "generator", None)
@click.option("--source", default="auto", show_default=True, type=click.Choice(["auto", "inverted", "mapped", "photos"]),
              help="Held-out latents: encoder inversions of test faces, mapped test seeds, or (auto for a photo "
                   "set such as ffhq) edited hybrid inversions of CelebA validation photos 000701...")
@click.option("--photo-cache", default="runs/celeba-latents", show_default=True, type=click.Path(file_okay=False),
              help="Per-photo inversions (photo sets): reused, missing ones made (~10 s a photo).")
@click.option("--no-identity", is_flag=True, help="Skip the face-api identity column.")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Write Markdown (e.g. docs/codec.md; only the generated block is replaced) and a .json beside it.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of Markdown.")
@bench_options(seed_help="Root seed of the channel noise.")
def codec(
    ks: str | None,
    snrs: str,
    channels: str,
    methods: str,
    n: int,
    models: str,
    generator_name: str | None,
    source: str,
    photo_cache: str,
    no_identity: bool,
    out: str | None,
    as_json: bool,
    threads: int | None,
    seed: int,
    quiet: bool,
) -> None:
    """Latent NMSE/SDR, image SSIM, LPIPS (proxy) and identity for each k, SNR and channel.

    \b
    Examples:
      edsc bench codec --out docs/codec.md
      edsc bench codec --k 128 --snr 0,6,12,20 --channel awgn --n 8 --method semantic,uncoded-pca
      edsc bench codec --models ffhq --snr 0,6,12,20 --n 32 --out docs/codec_ffhq.md

    \b
    On a photo set (ffhq) the held-out latents are hybrid inversions of CelebA validation
    photos, each edited along the set's directions; images are judged at the set's work
    size (256) and identity against the source photos, with the share of edits kept.
    """
    from editable_deepsc.channel.codec_zoo import BUILTIN_KS, codec_name, load_codec
    from editable_deepsc.errors import BadInput
    from editable_deepsc.eval.codec_bench import markdown_tables, run_codec_bench, write_results
    from editable_deepsc.generator import load_generator
    from editable_deepsc.train.codec_data import load_inversion_encoder

    from editable_deepsc.zoo.sets import load_set

    set_threads(threads)
    model_set = load_set(models)
    generator_name = set_member(models, "generator", generator_name)
    names = (model_set.codecs() if generator_name == model_set.member("generator")
             else {k: codec_name(generator_name, k) for k in BUILTIN_KS})  # fmt: skip
    k_list = _ints(ks) if ks else tuple(names)
    snr_list, ch_list = _floats(snrs), tuple(c.strip().lower() for c in channels.split(",") if c.strip())
    m_list = tuple(m.strip() for m in methods.split(",") if m.strip())
    if not k_list or not snr_list or not ch_list or not m_list:
        raise BadInput("--k, --snr, --channel and --method must not be empty")
    if n < 1:
        raise BadInput(f"--n must be >= 1, got {n}")
    gen = load_generator(generator_name)
    names = {k: names.get(k) or codec_name(generator_name, k) for k in k_list}
    codecs = {k: load_codec(names[k], generator=gen) for k in k_list}
    for k, c in codecs.items():
        c.card_config["name"] = names[k]
    photo_set = model_set.face_crop.get("framing") == "ffhq" and generator_name == model_set.member("generator")
    if source == "auto" and photo_set:
        source = "photos"
    photos, judged = None, gen
    if source == "photos":
        if not photo_set:
            raise BadInput(f"--source photos needs a photo model set (ffhq), not {models!r}")
        from editable_deepsc.eval.codec_bench_photos import photo_bench

        judged, photos = photo_bench(gen, n, photo_cache, progress=not quiet)
    encoder = load_inversion_encoder(gen) if source in ("auto", "inverted") else None
    result = run_codec_bench(
        judged, codecs, snrs=snr_list, channels=ch_list, n=n, seed=seed, source=source, encoder=encoder,
        methods=m_list, identity=not no_identity, progress=not quiet, photos=photos,
    )
    parts = [
        "edsc bench codec", f"--k {','.join(map(str, k_list))}", f"--snr {','.join(f'{s:g}' for s in snr_list)}",
        f"--channel {','.join(ch_list)}", f"--method {','.join(m_list)}", f"--n {n}",
        f"--models {models}" if photos is not None else f"--generator {generator_name}", f"--source {source}",
        f"--seed {seed}",
    ]
    if no_identity:
        parts.append("--no-identity")
    if out:
        parts.append(f"--out {shlex.quote(out)}")
    result["meta"]["command"] = " ".join(parts)
    default_k = next((k for k in k_list if names[k] == model_set.codec()), None)
    if out:
        md, js = write_results(result, out, default_k)
        click.echo(f"wrote {md} and {js}", err=True)
    if as_json:
        click.echo(json.dumps(result["rows"], indent=1))
    elif not out:
        click.echo(markdown_tables(result, default_k))

"""``edsc bench ...``: benchmarks, reported as ratios against an in-run baseline where possible."""

from __future__ import annotations

import click

from editable_deepsc.cli.lazy import LazyGroup

# bench name -> ("module:attr", one-line help); one line per benchmark
BENCHES: dict[str, tuple[str, str]] = {
    "codec": ("editable_deepsc.cli.bench_codec:codec", "Semantic codec vs uncoded PCA vs quantised latent over 5G LDPC."),
    "edit": ("editable_deepsc.cli.bench_edit:edit", "Editing: paper vs fast preset, JECC vs edit-then-transmit."),
    "identity": ("editable_deepsc.cli.bench_identity:identity", "Face descriptor on real photos: Olivetti same/different person, CelebA."),
    "faces": ("editable_deepsc.cli.bench_faces:faces", "Face-api score reliability (face vs mirror) and identity distances."),
    "edit-support": ("editable_deepsc.cli.bench_edit:edit_support", "Measure which edits the built-in editor supports."),
    "invert": ("editable_deepsc.cli.bench_invert:invert", "Inversion: encoder vs optimisation vs hybrid on held-out faces."),
    "latency": ("editable_deepsc.cli.bench_latency:latency", "Per-stage latency of one edit after model load."),
    "session": ("editable_deepsc.cli.bench_session:session", "Sessions: follow-up turns as deltas vs the full latent every turn."),
    "verify": ("editable_deepsc.cli.bench_verify:verify", "Receiver-verified edits: success after 0/1/2 correction rounds, symbols."),
    "ldpc": ("editable_deepsc.cli.bench_ldpc:ldpc", "LDPC decode throughput: Sionna vs C++ ldpc BP, same code and noise."),
    "deepjscc": ("editable_deepsc.cli.bench_deepjscc:deepjscc", "DeepJSCC baselines: PSNR/SSIM per CBR and SNR on held-out faces."),
    "generator": ("editable_deepsc.cli.bench_generator:generator", "FFHQ generator: s/image per stage and exit, fwd and fwd+bwd."),
}


@click.group(cls=LazyGroup, lazy=BENCHES)
def bench() -> None:
    """Benchmarks (ratios against an in-run baseline where possible)."""

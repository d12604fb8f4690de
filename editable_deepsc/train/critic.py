"""Train the latent critic of the instant editing preset (``edsc train critic``).

Three phases, the first two resumable under ``workdir``:

1. **data** — groups of training-seed latents and their edited variants
   (:func:`~editable_deepsc.train.critic_data.critic_groups`) scored by the face
   nets, written in shards of ``shard`` groups (a rerun skips finished shards);
2. **fit** — Adam on the critic loss (:mod:`editable_deepsc.train.critic_fit`),
   checkpointed through :class:`~editable_deepsc.train.loop.ResumableRun`; the
   last ``n_val`` groups are held out and give the residuals stored with the weights;
3. **calibrate** — the instant preset's margin and identity weight: each pair of
   :data:`~editable_deepsc.train.critic_calibration.CALIBRATION_GRID` edits the
   held-out groups' base faces with every supported default instruction, judged
   by the face nets (:func:`~editable_deepsc.train.critic_calibration.calibrate`);
   the table is printed and stored with the weights, and the preset in
   :mod:`editable_deepsc.editing.config` uses the best pair.
"""

from __future__ import annotations

import time
from pathlib import Path

from editable_deepsc.editing.critic import LatentCritic, critic_name, save_metadata
from editable_deepsc.editing.directions import load_directions
from editable_deepsc.editing.face_guidance import FaceNetGuidance
from editable_deepsc.editing.support import load_support
from editable_deepsc.errors import BadInput
from editable_deepsc.generator.loading import load_generator
from editable_deepsc.train.critic_calibration import calibrate
from editable_deepsc.train.critic_data import collect
from editable_deepsc.train.critic_fit import fit, new_critic
from editable_deepsc.zoo import registry


def train_critic(
    generator_name: str | None = None, n: int = 3000, variants: int = 4, steps: int = 3000, batch: int = 64,
    lr: float = 1e-3, n_val: int = 300, hidden: int = 512, depth: int = 3, workdir: str | Path = "runs/critic",
    seed: int = 0, register: bool = True, out: str | Path | None = None, progress: bool = True,
    calibration_faces: int = 50,
) -> dict:  # fmt: skip
    """Collect scored data, fit the critic, calibrate the instant preset on held-out faces (``calibration_faces``,
    0: skip), and (optionally) register it as ``<generator>-critic``.

    Returns
    -------
    dict
        ``name``, held-out ``errors`` (per-attribute R² and residual std, distance
        residual std and correlation, ``calibration`` rows), ``seconds`` (all phases).
    """
    if n_val < 10 or n <= n_val:
        raise BadInput(f"need --n > --n-val >= 10, got n={n}, n_val={n_val}")
    if variants < 1 or steps < 1:
        raise BadInput("--variants and --steps must be >= 1")
    t0 = time.perf_counter()
    gen = load_generator(generator_name)  # None: the default model set's generator
    generator_name = gen.name
    guidance = FaceNetGuidance()
    data = collect(workdir, gen, guidance, load_directions(generator_name), n, variants, seed, progress=progress)
    critic = new_critic(gen.num_ws, gen.w_dim, hidden, depth, seed)
    ckpt = Path(workdir) / f"fit-{generator_name}-n{n}-v{variants}-h{hidden}x{depth}-s{steps}-seed{seed}.safetensors"
    errors = fit(data, critic, steps, batch, lr, n_val, seed, ckpt, progress)
    if calibration_faces > 0:
        w_cal = data.w_plus[-n_val:, 0][:calibration_faces]  # held-out groups' base faces (training seeds)
        errors["calibration"] = calibrate(critic, gen, guidance, load_directions(generator_name),
                                          load_support(generator_name), w_cal, progress=progress)
    name = critic_name(generator_name)
    command = (f"edsc train critic --generator {generator_name} --n {n} --variants {variants} --steps {steps} "
               f"--seed {seed}")
    meta = {"command": command, "n": n, "variants": variants, "steps": steps, "seed": seed, "n_val": n_val}
    md = save_metadata(critic, generator_name, errors, meta)
    state = {k: v.detach().contiguous() for k, v in critic.state_dict().items()}
    if out is not None:
        registry.save_state_dict(state, out, metadata=md)
    if register:
        export_critic(critic, state, md, generator_name, command, meta)
    return {"name": name, "errors": errors, "seconds": round(time.perf_counter() - t0, 1)}


def export_critic(critic: LatentCritic, state: dict, metadata: dict, generator_name: str, command: str,
                  meta: dict) -> Path:
    """Publish a fitted critic to the zoo as ``<generator>-critic`` (weights + card); return the weights path."""
    return registry.publish(
        critic_name(generator_name), state, kind="latent-critic",
        licence="MIT (trained by this project on its own generator, scored by the face-api nets)",
        source=f"`{command}`", resolution=None,
        description=f"Latent critic of {generator_name}: face-net attributes and descriptor predicted from W+ "
                    "(instant editing preset)",
        config={"generator": generator_name, "generator_sha256": registry.sha256_of(generator_name),
                **critic.config(), **meta},
        metadata=metadata,
    )  # fmt: skip

"""Train the latent critic of the instant editing preset (``edsc train critic``).

Three phases, the first two resumable under ``workdir``:

1. **data** — groups of training-seed latents and their edited variants
   (:func:`~editable_deepsc.editing.critic.critic_groups`) scored by the face
   nets, written in shards of ``shard`` groups (a rerun skips finished shards);
2. **fit** — Adam on the critic loss, checkpointed through
   :class:`~editable_deepsc.train.loop.ResumableRun`; the last ``n_val`` groups
   are held out and give the residuals stored with the weights;
3. **calibrate** — the instant preset's margin and identity weight: each pair of
   :data:`CALIBRATION_GRID` edits the held-out groups' base faces with every
   supported default instruction, judged by the face nets
   (:func:`calibrate`); the table is printed and stored with the weights, and
   the preset in :mod:`editable_deepsc.editing.config` uses the best pair.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from editable_deepsc.editing.critic import (
    CriticData,
    LatentCritic,
    critic_errors,
    critic_groups,
    critic_loss,
    critic_name,
    save_metadata,
    score_groups,
    set_normalisation,
    set_residuals,
)
from editable_deepsc.errors import BadInput
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train.loop import ResumableRun, cosine_decay
from editable_deepsc.zoo import registry
from editable_deepsc.zoo.registry import load_state_dict, save_state_dict


def collect(
    workdir: str | Path, generator, guidance, directions, n: int, variants: int, seed: int, shard: int = 250,
    progress: bool = True,
) -> CriticData:  # fmt: skip
    """Scored groups for ``n`` training faces, from (and into) shard files under ``workdir``."""
    from tqdm import tqdm

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ws, ys, es = [], [], []
    shards = range(0, n, shard)
    for i in tqdm(shards, desc="critic data (shards)", disable=not progress):
        m = min(shard, n - i)
        f = workdir / f"data-{generator.name}-v{variants}-seed{seed}-{i // shard:04d}-of{shard}.safetensors"
        if f.is_file():
            st = load_state_dict(f)
            if st["w_plus"].shape[0] == m:
                ws.append(st["w_plus"]), ys.append(st["targets"]), es.append(st["embedding"])
                continue
        w = critic_groups(generator, directions, m, variants, derive_seed(seed, "critic-data", i // shard))
        y, e = score_groups(generator, guidance, w)
        save_state_dict({"w_plus": w, "targets": y, "embedding": e}, f)
        ws.append(w), ys.append(y), es.append(e)
    return CriticData(torch.cat(ws), torch.cat(ys), torch.cat(es), {"n": n, "variants": variants, "seed": seed})


def fit(
    data: CriticData, critic: LatentCritic, steps: int, batch: int, lr: float, n_val: int, seed: int,
    checkpoint: str | Path, progress: bool = True, weight_decay: float = 0.1,
) -> dict:  # fmt: skip
    """Train ``critic`` on ``data`` (last ``n_val`` groups held out) with AdamW; return the held-out errors."""
    train, val = data.split(n_val)
    set_normalisation(critic, train)
    opt = torch.optim.AdamW(critic.parameters(), lr=lr, weight_decay=weight_decay)
    run = ResumableRun(checkpoint, {"critic": critic}, {"opt": opt})
    g = make_generator(derive_seed(seed, "critic-fit"))
    for _ in range(run.start):  # the batches already drawn before a resumption
        torch.randint(len(train), (batch,), generator=g)
    critic.train()
    bar = run.steps(steps, steps, "fit critic", progress)
    for step in bar:
        for pg in opt.param_groups:
            pg["lr"] = cosine_decay(step / steps, lr, 0.02 * lr)
        idx = torch.randint(len(train), (batch,), generator=g)
        loss, parts = critic_loss(critic, train.w_plus[idx], train.targets[idx], train.embedding[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 100 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", dist=f"{parts['dist']:.3f}")
        if (step + 1) % 1000 == 0 or step + 1 == steps:
            run.save(step + 1)
    critic.eval()
    errors = critic_errors(critic, val)
    set_residuals(critic, errors)
    errors["seconds"] = run.elapsed()
    return errors


CALIBRATION_GRID: tuple[tuple[float, float], ...] = (
    (1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (2.0, 3.0), (3.0, 3.0), (4.0, 3.0),
)
"""(critic_margin, critic_id_weight) pairs tried by :func:`calibrate`."""


def calibrate(
    critic: LatentCritic, generator, guidance, directions, support, w0: torch.Tensor,
    grid: tuple[tuple[float, float], ...] = CALIBRATION_GRID, progress: bool = True,
) -> list[dict]:  # fmt: skip
    """Success of the instant preset for each (margin, identity weight) of ``grid`` on faces ``w0``.

    Every supported instruction of :data:`~editable_deepsc.editing.evaluate.DEFAULT_INSTRUCTIONS`
    edits every face; success is judged as in ``edsc bench edit`` (face nets on the output).

    Returns
    -------
    list of dict
        ``margin``, ``id_weight``, ``success``, ``met``, ``id_distance`` (means over instructions).
    """
    from tqdm import tqdm

    from editable_deepsc.editing.config import edit_config
    from editable_deepsc.editing.editor import Editor
    from editable_deepsc.editing.evaluate import DEFAULT_INSTRUCTIONS, run_instruction

    ins = [i for i in DEFAULT_INSTRUCTIONS if support is None or support.is_supported_all(i.targets)]
    rows = []
    for margin, idw in tqdm(grid, desc="calibrate instant preset", disable=not progress):
        cfg = edit_config("instant", critic_margin=margin, critic_id_weight=idw)
        ed = Editor(generator, guidance, config=cfg, directions=directions, critic=critic)
        rs = [run_instruction(ed, w0, i.targets, guidance) for i in ins]
        rows.append({"margin": margin, "id_weight": idw,
                     **{k: sum(r[k] for r in rs) / len(rs) for k in ("success", "met", "id_distance")}})  # fmt: skip
    return rows


def calibration_markdown(rows: list[dict]) -> str:
    """Markdown table of :func:`calibrate` rows, best success in bold."""
    best = max(r["success"] for r in rows)
    lines = ["| margin (residual stds) | identity weight | success | target met | id-dist |", "|---|---|---|---|---|"]
    for r in rows:
        s = f"{100 * r['success']:.1f}%"
        lines.append(f"| {r['margin']:g} | {r['id_weight']:g} | {'**' + s + '**' if r['success'] == best else s} "
                     f"| {100 * r['met']:.1f}% | {r['id_distance']:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def train_critic(
    generator_name: str = "edsc-faces64", n: int = 3000, variants: int = 4, steps: int = 3000, batch: int = 64,
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
    from editable_deepsc.editing.builtin import builtin_generator
    from editable_deepsc.editing.directions import load_directions
    from editable_deepsc.editing.face_guidance import FaceNetGuidance

    if n_val < 10 or n <= n_val:
        raise BadInput(f"need --n > --n-val >= 10, got n={n}, n_val={n_val}")
    if variants < 1 or steps < 1:
        raise BadInput("--variants and --steps must be >= 1")
    t0 = time.perf_counter()
    gen = builtin_generator(generator_name)
    guidance = FaceNetGuidance()
    data = collect(workdir, gen, guidance, load_directions(generator_name), n, variants, seed, progress=progress)
    torch.manual_seed(derive_seed(seed, "critic-init") % (2**31))
    critic = LatentCritic(gen.num_ws, gen.w_dim, hidden, depth)
    ckpt = Path(workdir) / f"fit-{generator_name}-n{n}-v{variants}-h{hidden}x{depth}-s{steps}-seed{seed}.safetensors"
    errors = fit(data, critic, steps, batch, lr, n_val, seed, ckpt, progress)
    if calibration_faces > 0:
        from editable_deepsc.editing.support import load_support

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
        try:
            gen_sha = registry.card(generator_name).sha256
        except Exception:  # noqa: BLE001 - user generator outside the zoo
            gen_sha = None
        registry.publish(
            name, state, kind="latent-critic",
            licence="MIT (trained by this project on its own generator, scored by the face-api nets)",
            source=f"`{command}`", resolution=None,
            description=f"Latent critic of {generator_name}: face-net attributes and descriptor predicted from W+ "
                        "(instant editing preset)",
            config={"generator": generator_name, "generator_sha256": gen_sha, **critic.config(), **meta},
            metadata=md,
        )  # fmt: skip
    return {"name": name, "errors": errors, "seconds": round(time.perf_counter() - t0, 1)}

"""Train a DeepJSCC baseline on teacher faces (``edsc train deepjscc``), resumable.

Data: a pool of ``pool`` teacher faces from the *training* seeds
(:func:`~editable_deepsc.generator.teacher.random_train_seeds`), generated once
and cached as uint8 safetensors in the work directory; each step draws a batch
from the pool with random horizontal flips. Channel: complex AWGN with a
per-image SNR uniform in ``[snr_min, snr_max]`` dB (not SNR-aware: the model
is never told the SNR). Loss: MSE in [-1, 1] pixel units. Optimiser: Adam,
learning rate ``lr`` with a cosine decay to ``lr/20`` over ``steps``.

Everything random is seeded per step (``derive_seed(seed, "step", i)``), so a
run that is killed and resumed from its checkpoint ends with the same weights
as one that was not. ``max_minutes`` stops early (checkpoint + export what was
trained; the card records the steps actually done).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from editable_deepsc.baselines.deepjscc import DeepJSCC, DeepJSCCConfig, model_metadata, model_name
from editable_deepsc.errors import BadInput
from editable_deepsc.rng import derive_seed, make_generator
from editable_deepsc.train.loop import ResumableRun, cosine_decay


@dataclass(frozen=True)
class DeepJSCCTrainConfig:
    """Hyper-parameters of one DeepJSCC training run (see the module docstring)."""

    c: int = 8
    width: int = 32
    steps: int = 1200
    batch: int = 32
    lr: float = 2e-3
    snr_min: float = 0.0
    snr_max: float = 20.0
    pool: int = 4096
    seed: int = 0
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.pool < self.batch:
            raise BadInput(f"need steps >= 1, batch >= 1 and pool >= batch (got {self.steps}, {self.batch}, {self.pool})")
        if not (-10 <= self.snr_min <= self.snr_max <= 40):
            raise BadInput(f"SNR range must satisfy -10 <= min <= max <= 40, got [{self.snr_min}, {self.snr_max}]")
        if not self.lr > 0:
            raise BadInput(f"lr must be positive, got {self.lr}")


def face_pool(n: int, seed: int, cache: Path | None = None, progress: bool = True) -> torch.Tensor:
    """``n`` teacher faces from training seeds as uint8 (n, 3, 64, 64), cached in ``cache`` if given."""
    from editable_deepsc.generator.teacher import load_teacher, random_train_seeds, teacher_faces
    from editable_deepsc.zoo.registry import load_state_dict, save_state_dict

    if cache is not None and cache.is_file():
        return load_state_dict(cache)["faces"]
    seeds = random_train_seeds(n, make_generator(derive_seed(seed, "deepjscc-pool")))
    teacher = load_teacher()
    chunks = []
    for i in tqdm(range(0, n, 256), desc="teacher faces", disable=not progress, leave=False):
        x = teacher_faces(seeds[i : i + 256], teacher)
        chunks.append(((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))
    faces = torch.cat(chunks)
    if cache is not None:
        save_state_dict({"faces": faces}, cache)
    return faces


def _lr(cfg: DeepJSCCTrainConfig, step: int) -> float:
    return cfg.lr * cosine_decay(min(1.0, step / max(1, cfg.steps)), 1.0, 0.05)


def train_deepjscc(cfg: DeepJSCCTrainConfig, workdir: str | Path, max_minutes: float | None = None,
                   progress: bool = True) -> tuple[DeepJSCC, dict]:
    """Train (or resume) a DeepJSCC model; return it and a summary dict.

    Parameters
    ----------
    cfg : DeepJSCCTrainConfig
    workdir : path
        Holds ``checkpoint.safetensors``, ``log.jsonl``, ``summary.json`` and the face pool.
    max_minutes : float, optional
        Wall-clock budget for this call (checkpoint and stop when exceeded).
    progress : bool

    Returns
    -------
    model : DeepJSCC
    summary : dict
        ``config``, ``steps_done``, ``seconds``, ``final_loss`` (mean of the last 50 steps), ``psnr_train``.
    """
    from editable_deepsc.channel import make_channel

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    faces = face_pool(cfg.pool, cfg.seed, work.parent / f"faces-pool-n{cfg.pool}-seed{cfg.seed}.safetensors",
                      progress)
    torch.manual_seed(derive_seed(cfg.seed, "deepjscc-init", cfg.c))
    model = DeepJSCC(DeepJSCCConfig(c=cfg.c, width=cfg.width))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ckpt = work / "checkpoint.safetensors"
    if ckpt.is_file():
        stored = json.loads((work / "config.json").read_text()) if (work / "config.json").is_file() else None
        same = {k: v for k, v in asdict(cfg).items() if k not in ("steps", "checkpoint_every")}
        if stored is not None and {k: stored.get(k) for k in same} != same:
            raise BadInput(f"{work} holds a run with another config (only --steps may change); use a new --workdir")
    run = ResumableRun(ckpt, {"model": model}, {"opt": opt})
    (work / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    channel = make_channel("awgn")
    losses: list[float] = []
    bar = run.steps(cfg.steps, cfg.steps, f"train deepjscc c={cfg.c}", progress)
    step = run.start
    log = (work / "log.jsonl").open("a")
    model.train()
    for step in bar:
        rng = make_generator(derive_seed(cfg.seed, "step", step))
        idx = torch.randint(0, faces.shape[0], (cfg.batch,), generator=rng)
        x = faces[idx].float() / 127.5 - 1
        flip = torch.rand(cfg.batch, generator=rng) < 0.5
        x[flip] = x[flip].flip(-1)
        snr = cfg.snr_min + (cfg.snr_max - cfg.snr_min) * torch.rand(cfg.batch, generator=rng)
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        out = model(x, snr, channel=channel, rng=rng)
        loss = (out - x).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / 10:.4f}")
            log.write(json.dumps({"step": step + 1, "loss": round(sum(losses[-10:]) / 10, 6)}) + "\n")
            log.flush()
        if (step + 1) % cfg.checkpoint_every == 0:
            run.save(step + 1)
        if max_minutes is not None and time.perf_counter() - run.t0 > 60 * max_minutes:
            step += 1
            break
    else:
        step = cfg.steps
    bar.close()
    log.close()
    run.save(step)
    model.eval()
    last = losses[-50:]
    mse = sum(last) / len(last) if last else float("nan")
    summary = {"config": asdict(cfg), "steps_done": int(step),
               "seconds": round(run.elapsed(), 1),
               "final_loss": mse, "psnr_train": 10 * math.log10(4 / mse) if last else None}
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    return model, summary


def export_deepjscc(model: DeepJSCC, summary: dict, command: str, models: str | None = None) -> Path:
    """Export ``model`` to ``zoo/weights`` and write its card (name :func:`model_name` in model set ``models``)."""
    from editable_deepsc.zoo import registry

    name = model_name(model.c, models)
    registry.publish(
        name, model.state_dict(), metadata=model_metadata(model, {"cbr": model.config.cbr}), kind="deepjscc",
        licence="MIT (trained by this project on teacher faces; DigiFace-1M-derived teacher: research only)",
        source=f"{command} (steps done {summary['steps_done']}, {summary['seconds']} s)",
        resolution=64,
        description=f"DeepJSCC baseline, c={model.c} (CBR 1/{round(1 / model.config.cbr)}), AWGN 0-20 dB, not SNR-aware",
        config={**asdict(model.config), "cbr": model.config.cbr, "snr_range_db": [summary["config"]["snr_min"],
                summary["config"]["snr_max"]], "final_train_mse": summary["final_loss"]},
    )
    return registry.CARDS_DIR / f"{name}.json"


__all__ = ["DeepJSCCTrainConfig", "face_pool", "export_deepjscc", "train_deepjscc"]

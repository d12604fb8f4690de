"""Run ``edsc eval``: shards of samples, resumable JSONL output, local process workers or Ray.

Output directory layout::

    out/config.json                  the EvalConfig + system + metric labels (written first)
    out/shards/shard-<id>.jsonl      records as they are produced (one line per sample × condition)
    out/features/sample-<i>.npy      FID features of one sample (float16, reference row first)
    out/images/sample-<i>/*.png      images of the first ``grid_samples`` samples (for the grid)
    out/records.jsonl                all records, merged and sorted (written at the end)

**Resume**: a sample is done when the shard files hold one record for each of
its conditions and its feature file exists; a re-run (same config) skips done
samples and recomputes the rest. **Shards**: the samples still to do are dealt
round-robin to ``workers`` shards (:func:`shard_samples`); every worker builds the
system once and appends to its own shard file, so there is no write contention.
With ``engine="ray"`` the same shard function runs as Ray tasks (Ray is an
optional extra, imported only then).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from editable_deepsc.channel.codec_zoo import codec_name, load_codec
from editable_deepsc.editing.measure import measurable_attributes
from editable_deepsc.errors import BadInput
from editable_deepsc.imaging.io import check_output
from editable_deepsc.eval.compare_config import EvalConfig
from editable_deepsc.eval.compare_records import done_samples
from editable_deepsc.eval.compare_report import write_reports
from editable_deepsc.eval.compare_sample import Instruction, Scorer, evaluate_sample
from editable_deepsc.eval.edit_bench import DEFAULT_INSTRUCTIONS
from editable_deepsc.generator.teacher import load_teacher, teacher_faces, test_seeds
from editable_deepsc.imaging.io import save_image
from editable_deepsc.system import EditableDeepSC, SystemConfig
from editable_deepsc.zoo import registry
from editable_deepsc.zoo.sets import load_set

DEFAULT_SYSTEM = "editable_deepsc.eval.compare_run:load_builtin_system"
"""``module:function`` building the system in each worker (the built-in models)."""
ENGINES: tuple[str, ...] = ("local", "ray")


def load_builtin_system(**config: Any):
    """The built-in :class:`~editable_deepsc.system.EditableDeepSC` (``config`` → :class:`SystemConfig`)."""
    return EditableDeepSC.load(SystemConfig(**config))


def _resolve(spec: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise BadInput(f"cannot import system factory {spec!r}: {e}") from None


def load_instructions(spec: str, system=None, parse: Callable[[str], Any] | None = None) -> list[Instruction]:
    """``"default"`` → the editing bench set; otherwise a text file, one instruction per line (parsed
    by ``parse`` if given, else by ``system.tx.understand``).

    Raises
    ------
    BadInput
        Missing file, empty set. UnsupportedInstruction: a line the parser refuses.
    """
    if spec == "default":
        return [Instruction(b.text, tuple(b.targets)) for b in DEFAULT_INSTRUCTIONS]
    p = Path(spec)
    if not p.is_file():
        raise BadInput(f"--instructions must be 'default' or a text file, got {spec!r}")
    lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise BadInput(f"{spec} holds no instruction")
    if parse is None and system is None:
        raise BadInput("parsing an instruction file needs the system's parser")
    parse = parse or system.tx.understand
    return [Instruction(t, tuple(parse(t).targets)) for t in lines]


def check_instructions(spec: str, system_spec: str, system_kwargs: dict | None = None) -> None:
    """Parse an instruction file as the run will, before anything is written (raises like
    :func:`load_instructions`)."""
    if spec == "default":
        return
    if system_spec == DEFAULT_SYSTEM:
        from editable_deepsc.text.parser import default_parser

        load_instructions(spec, parse=default_parser().parse)
    else:
        load_instructions(spec, system=_resolve(system_spec)(**(system_kwargs or {})))


def usable_instructions(instructions: Sequence[Instruction], system) -> list[Instruction]:
    """The instructions the system's editor can run: every attribute measurable by its guidance
    and, when the editor has a support table, every target marked supported.

    Raises
    ------
    BadInput
        None is usable.
    """
    editor = system.tx.editor
    attrs = set(measurable_attributes(editor.guidance))
    support = getattr(editor, "support", None)
    keep = [i for i in instructions if all(t.attribute in attrs for t in i.targets)
            and (support is None or all(support.is_supported(t) for t in i.targets))]
    if not keep:
        raise BadInput("none of the instructions is supported by this system's editor")
    return keep


def shard_samples(sample_ids: Sequence[int], num_shards: int) -> list[list[int]]:
    """Deal ``sample_ids`` round-robin into ``num_shards`` lists (each id exactly once, order kept)."""
    if int(num_shards) < 1:
        raise BadInput(f"need at least one shard, got {num_shards}")
    shards: list[list[int]] = [[] for _ in range(int(num_shards))]
    for i, s in enumerate(sample_ids):
        shards[i % int(num_shards)].append(int(s))
    return [s for s in shards if s] or [[]]


def _save_images(out: Path, sample_id: int, images: dict[str, torch.Tensor]) -> None:
    d = Path(out) / "images" / f"sample-{sample_id}"
    d.mkdir(parents=True, exist_ok=True)
    for key, img in images.items():
        save_image(img, d / (key.replace("|", "_") + ".png"))


def run_shard(out: str, config: dict, sample_ids: list[int], shard_id: str, system_spec: str = DEFAULT_SYSTEM,
              system_kwargs: dict | None = None, method_options: dict | None = None, progress: bool = True,
              threads: int | None = None) -> int:
    """Evaluate ``sample_ids`` and append their records to ``out/shards/shard-<shard_id>.jsonl``.

    Runs in the calling process, a local worker process or a Ray task; returns the samples done.
    """
    if threads:
        torch.set_num_threads(int(threads))
    cfg = EvalConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in config.items()})
    out_p = Path(out)
    system = _resolve(system_spec)(**(system_kwargs or {}))
    scorer = Scorer(system, cfg.proxy_input_size)
    instructions = usable_instructions(load_instructions(cfg.instructions, system), system)
    codec = system.tx.codec
    gen = system.generator
    res = int(gen.resolution)
    conditions = cfg.conditions(int(codec.k), res)
    codecs = {int(codec.k): codec}
    for k in cfg.ks or ():
        if k not in codecs:
            codecs[k] = load_codec(codec_name(gen.name, k), generator=gen).eval()
    seeds = test_seeds(cfg.n, cfg.offset)
    teacher = load_teacher()
    path = out_p / "shards" / f"shard-{shard_id}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    (out_p / "features").mkdir(parents=True, exist_ok=True)
    done = 0
    with path.open("a") as fh:
        for sid in tqdm(sample_ids, desc=f"eval shard {shard_id}", disable=not progress, leave=False):
            face = _face(seeds[sid], res, teacher)
            r = evaluate_sample(system, scorer, codecs, sid, face, instructions[sid % len(instructions)], conditions,
                                cfg.channel, cfg.seed, keep_images=sid < cfg.grid_samples,
                                method_options=method_options)
            np.save(out_p / "features" / f"sample-{sid}.npy", r.features)
            if r.images:
                _save_images(out_p, sid, r.images)
            fh.write("".join(json.dumps(rec) + "\n" for rec in r.records))
            fh.flush()
            done += 1
    return done


def _face(seed: int, resolution: int, teacher) -> torch.Tensor:
    """The held-out teacher face of ``seed`` (1, 3, R, R), area-resized when the generator is not 64 px."""
    face = teacher_faces([seed], teacher)
    if face.shape[-1] != resolution:
        face = torch.nn.functional.interpolate(face, size=(resolution, resolution), mode="area")
    return face


def _require_ray():
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise BadInput("--engine ray needs the optional extra 'ray' (install the ray package)") from None


def _ray_run(jobs: list[dict]) -> list[int]:
    ray = _require_ray()
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None)
    task = ray.remote(run_shard)
    return ray.get([task.remote(**j) for j in jobs])


def _local_run(jobs: list[dict]) -> list[int]:
    if len(jobs) == 1:
        return [run_shard(**jobs[0])]
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        results = [pool.apply_async(run_shard, kwds=j) for j in jobs]
        return [r.get() for r in results]


def run_eval(config: EvalConfig, out: str | Path, workers: int = 1, engine: str = "local",
             system_spec: str = DEFAULT_SYSTEM, system_kwargs: dict | None = None,
             method_options: dict | None = None, progress: bool = True) -> dict:
    """Run (or resume) an evaluation into ``out`` and write the merged records and reports.

    Parameters
    ----------
    config : EvalConfig
    out : path
        Output directory (created; an existing run with another config raises BadInput).
    workers : int
        Shards run in parallel (local processes, or Ray tasks with ``engine="ray"``).
    engine : {"local", "ray"}
    system_spec : str
        ``module:function`` returning the system (called in every worker with ``system_kwargs``).
    method_options : dict, optional
        Extra options per baseline method.
    progress : bool

    Returns
    -------
    dict
        ``samples_done`` (this call), ``samples_total``, ``seconds``, ``records`` (count) and the report paths.
    """
    if engine not in ENGINES:
        raise BadInput(f"unknown engine {engine!r} (choose from: {', '.join(ENGINES)})")
    if int(workers) < 1:
        raise BadInput(f"--workers must be >= 1, got {workers}")
    if engine == "ray":
        _require_ray()
    out_p = Path(out)
    if out_p.exists() and not out_p.is_dir():
        raise BadInput(f"--out {out_p} exists and is not a folder")
    check_instructions(config.instructions, system_spec, system_kwargs)  # before anything is written
    check_output(out_p / "config.json", "--out")
    out_p.mkdir(parents=True, exist_ok=True)
    conf = config.to_json()
    meta = {"config": conf, "system_spec": system_spec, "system_kwargs": system_kwargs or {},
            "method_options": method_options or {}, "zoo_sha256": _zoo_digests()}
    cfg_path = out_p / "config.json"
    if cfg_path.is_file():  # resume; only n may change (sample i is the same face + instruction for any n)
        old = json.loads(cfg_path.read_text())
        plain = json.loads(json.dumps(conf))
        if {k: v for k, v in old.get("config", {}).items() if k != "n"} != {k: v for k, v in plain.items() if k != "n"}:
            raise BadInput(f"{out_p} holds a run with another configuration (only --n may change); use another --out")
        now = _zoo_digests()
        changed = sorted(k for k, v in old.get("zoo_sha256", {}).items() if now.get(k, v) != v)
        if changed:
            raise BadInput(f"models changed since {out_p} was started ({', '.join(changed)}); "
                           "results would mix versions: use another --out")
        if old["config"].get("n") != plain["n"]:
            old["config"]["n"] = plain["n"]
            cfg_path.write_text(json.dumps(old, indent=1) + "\n")
    else:
        cfg_path.write_text(json.dumps(meta, indent=1) + "\n")
    t0 = time.perf_counter()
    default_k, res = _default_k(system_spec, system_kwargs)
    conditions = config.conditions(default_k, res)
    n_cond = len(conditions)
    todo = [i for i in range(config.n) if i not in done_samples(out_p, n_cond)]
    stamp = time.strftime("%Y%m%d%H%M%S")
    shards = shard_samples(todo, min(int(workers), max(1, len(todo)))) if todo else []
    threads = 1 if len(shards) > 1 else None
    jobs = [dict(out=str(out_p), config=conf, sample_ids=ids, shard_id=f"{stamp}-{j}", system_spec=system_spec,
                 system_kwargs=system_kwargs, method_options=method_options, progress=progress, threads=threads)
            for j, ids in enumerate(shards)]
    done = 0
    if jobs:
        done = sum(_ray_run(jobs) if engine == "ray" else _local_run(jobs))
    summary = write_reports(out_p, config, conditions, default_k)
    summary.update(samples_done=done, samples_total=config.n, seconds=round(time.perf_counter() - t0, 1))
    return summary


UNUSED_KINDS = frozenset({"delta-statistics"})
"""Registered model kinds the evaluation never loads (follow-up session turns): not part of a run's identity."""


def _zoo_digests() -> dict[str, str]:
    """sha256 of every registered model the evaluation may use (which weights produced the numbers)."""
    return {c.name: c.sha256 for c in registry.list_cards() if c.kind not in UNUSED_KINDS}


def _default_k(system_spec: str, system_kwargs: dict | None) -> tuple[int, int]:
    if system_spec == DEFAULT_SYSTEM:
        codec = (system_kwargs or {}).get("codec") or load_set((system_kwargs or {}).get("models")).codec()
        c = registry.card(codec)
        return int(c.config["k"]), int(c.config.get("image_size", c.resolution or 64))
    system = _resolve(system_spec)(**(system_kwargs or {}))
    return int(system.tx.codec.k), int(system.generator.resolution)


__all__ = ["DEFAULT_SYSTEM", "ENGINES", "done_samples", "load_builtin_system", "load_instructions",
           "check_instructions", "run_eval", "run_shard", "shard_samples", "usable_instructions"]

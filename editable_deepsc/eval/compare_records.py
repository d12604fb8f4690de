"""The evaluation's shard records on disk: ``out/shards/shard-*.jsonl`` (written by :mod:`compare_run`,
read by :mod:`compare_run` to resume and by :mod:`compare_report` to summarise)."""

from __future__ import annotations

import json
from pathlib import Path


def read_records(out: Path) -> list[dict]:
    """Every well-formed record in ``out/shards/*.jsonl`` (torn last lines are skipped)."""
    recs = []
    for f in sorted((Path(out) / "shards").glob("shard-*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                recs.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return recs


def done_samples(out: Path, n_conditions: int) -> set[int]:
    """Sample ids with a record for every condition and a feature file."""
    keys: dict[int, set[str]] = {}
    for r in read_records(out):
        keys.setdefault(int(r["sample_id"]), set()).add(r["condition"])
    feat = Path(out) / "features"
    return {s for s, k in keys.items() if len(k) >= n_conditions and (feat / f"sample-{s}.npy").is_file()}


__all__ = ["done_samples", "read_records"]

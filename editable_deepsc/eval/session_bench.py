"""``edsc bench session``: what follow-up turns cost, delta codec vs sending the full latent every turn.

Each held-out teacher test face gets the same scripted conversation (by
default "make her smile" → "a bit more" → "turn the head to the left" →
"open the mouth") three times, at each SNR:

* **delta** — the system's policy: the first turn sends the full latent
  through the semantic codec; follow-ups are edited inside the span of the
  axes the :class:`~editable_deepsc.channel.delta.DeltaCodec` sends
  (``SystemConfig.delta_subspace``) and only the edit delta is sent (a full
  refresh every ``refresh_every`` turns);
* **delta-free** — the same, but follow-ups are edited freely, so the delta
  codec truncates what falls outside its axes;
* **full** — every turn sends the full latent (``refresh_every = 1``).

Quality is the received image against the image the transmitter meant (PSNR,
SSIM); ``edit_met`` says whether the transmitter's edit met its targets. A
follow-up whose edit cannot meet its targets inside the delta axes is edited
freely and sent in full (counted in "follow-ups sent in full"). The issue's v1 target: a follow-up costs
≤ 1/4 of the first turn's symbols at the same received quality.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict

from tqdm import tqdm

from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.generator.teacher import teacher_faces, test_seeds
from editable_deepsc.system import EditableDeepSC, SystemConfig

MODES: tuple[str, ...] = ("delta", "delta-free", "full")
"""The three transmission policies compared (see the module docstring)."""

DEFAULT_SCRIPT: tuple[str, ...] = ("make her smile", "a bit more", "turn the head to the left", "open the mouth")


def run_session_bench(n: int = 8, snrs: tuple[float, ...] = (0.0, 6.0, 12.0), channel: str = "awgn",
                      script: tuple[str, ...] = DEFAULT_SCRIPT, refresh_every: int = 4, seed: int = 0,
                      delta_k: int | None = None, system=None, progress: bool = True,
                      models: str | None = None) -> list[dict]:
    """Run the scripted sessions; return one record per (mode, SNR, face, turn).

    Records: ``mode``, ``snr_db``, ``channel``, ``face`` (test seed), ``turn``, ``instruction``,
    ``kind`` (full/delta), ``symbols``, ``psnr``, ``ssim``, ``power``.
    """
    if system is None:
        system = EditableDeepSC.load(SystemConfig(refresh_every=refresh_every, delta_k=delta_k,
                                                  **({"models": models} if models else {})))
    seeds = list(test_seeds(n))
    faces = teacher_faces(seeds)
    base = system.config
    delta = system.tx.delta
    rows: list[dict] = []
    jobs = [(mode, snr, i) for mode in MODES for snr in snrs for i in range(n)]
    try:
        for mode, snr, i in tqdm(jobs, desc="sessions", disable=not progress):
            system.config = dataclasses.replace(base, refresh_every=1 if mode == "full" else refresh_every,
                                                delta_subspace=mode == "delta")
            ch = ChannelConfig(channel, snr)
            session = system.session(faces[i:i + 1], ch, seed=seed + i)
            for j, text in enumerate(script):
                t = session.send(text)
                rows.append({"mode": mode, "snr_db": ch.snr_db, "channel": ch.name, "face": seeds[i], "turn": j,
                             "instruction": text, "kind": t.kind, "symbols": t.symbols, "psnr": t.psnr,
                             "ssim": t.ssim, "power": t.power, "edit_met": t.edit_met,
                             "delta_coords": delta.coords_for(ch.snr_db) if delta is not None else None,
                             "delta_slots": delta.slots if delta is not None else None})
    finally:
        system.config = base
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean symbols / PSNR / SSIM per (mode, SNR, turn)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["mode"], r["snr_db"], r["turn"])].append(r)
    out = []
    for (mode, snr, turn), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        out.append({"mode": mode, "snr_db": snr, "turn": turn, "instruction": rs[0]["instruction"],
                    "kinds": "/".join(sorted({r["kind"] for r in rs})),
                    "symbols": statistics.mean(r["symbols"] for r in rs),
                    "psnr": statistics.mean(r["psnr"] for r in rs),
                    "ssim": statistics.mean(r["ssim"] for r in rs),
                    "edit_met": statistics.mean(float(bool(r.get("edit_met"))) for r in rs), "n": len(rs)})
    return out


def verdict(rows: list[dict]) -> list[dict]:
    """Per SNR: follow-up symbols as a share of the first turn's, and their quality vs sending in full.

    Follow-ups are the turns the delta policy sent as deltas.
    """
    out = []
    for snr in sorted({r["snr_db"] for r in rows}):
        d = [r for r in rows if r["snr_db"] == snr and r["mode"] == "delta"]
        f = {(r["face"], r["turn"]): r for r in rows if r["snr_db"] == snr and r["mode"] == "full"}
        g = {(r["face"], r["turn"]): r for r in rows if r["snr_db"] == snr and r["mode"] == "delta-free"}
        first = [r for r in d if r["turn"] == 0]
        follow = [r for r in d if r["kind"] == "delta"]
        if not first or not follow:
            continue
        same_full = [f[(r["face"], r["turn"])] for r in follow]
        same_free = [g[(r["face"], r["turn"])] for r in follow if (r["face"], r["turn"]) in g]
        out.append({
            "snr_db": snr,
            "first_symbols": statistics.mean(r["symbols"] for r in first),
            "followup_symbols": statistics.mean(r["symbols"] for r in follow),
            "followup_symbols_all": statistics.mean(r["symbols"] for r in d if r["turn"] > 0),
            "followups_in_full": sum(r["kind"] == "full" for r in d if r["turn"] > 0),
            "followups": sum(1 for r in d if r["turn"] > 0),
            "symbol_ratio": statistics.mean(r["symbols"] for r in follow) / statistics.mean(r["symbols"] for r in first),
            "followup_psnr_delta": statistics.mean(r["psnr"] for r in follow),
            "followup_psnr_full": statistics.mean(r["psnr"] for r in same_full),
            "followup_ssim_delta": statistics.mean(r["ssim"] for r in follow),
            "followup_ssim_full": statistics.mean(r["ssim"] for r in same_full),
            "followup_psnr_free": statistics.mean(r["psnr"] for r in same_free) if same_free else float("nan"),
            "followup_met_delta": statistics.mean(float(bool(r.get("edit_met"))) for r in follow),
            "followup_met_full": statistics.mean(float(bool(r.get("edit_met"))) for r in same_full),
            "first_psnr": statistics.mean(r["psnr"] for r in first),
            "delta_coords": follow[0].get("delta_coords"),
            "delta_slots": follow[0].get("delta_slots"),
        })
    return out


def _coords_text(v: dict) -> str:
    m, slots = v.get("delta_coords"), v.get("delta_slots")
    return "n/a" if not m else f"{m} of {slots} slots ({slots / m:.1f} copies each)"


def to_markdown(rows: list[dict], command: str) -> str:
    """The bench as a Markdown page (per-turn table + verdict)."""
    lines = ["# Multi-turn sessions: follow-up turns", "",
             f"Generated by `{command}` — do not edit by hand.", "",
             "Quality = received image vs the image the transmitter meant (PSNR dB / SSIM), mean over faces.",
             "`delta`: follow-ups edited inside the delta codec's axes and sent as deltas (the system's policy); "
             "`delta-free`: edited freely, sent as deltas; `full`: every turn sends the whole latent. "
             "`edit met`: the transmitter's edit met its targets.", "",
             "## Verdict (follow-ups = the turns the policy sent as deltas)", "",
             "| SNR dB | first turn symbols | delta follow-up symbols | ratio | follow-ups sent in full | "
             "mean follow-up symbols | follow-up PSNR delta / delta-free / full | "
             "follow-up SSIM delta / full | edit met delta / full | first-turn PSNR | delta coordinates sent |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for v in verdict(rows):
        lines.append(f"| {v['snr_db']:g} | {v['first_symbols']:.0f} | {v['followup_symbols']:.0f} | "
                     f"{v['symbol_ratio']:.3f} | {v['followups_in_full']}/{v['followups']} | "
                     f"{v['followup_symbols_all']:.1f} | {v['followup_psnr_delta']:.2f} / {v['followup_psnr_free']:.2f} / "
                     f"{v['followup_psnr_full']:.2f} | {v['followup_ssim_delta']:.3f} / {v['followup_ssim_full']:.3f} | "
                     f"{v['followup_met_delta']:.0%} / {v['followup_met_full']:.0%} | {v['first_psnr']:.2f} | "
                     f"{_coords_text(v)} |")
    lines += ["", "## Per turn", "",
              "| SNR dB | turn | instruction | mode | sent as | symbols | PSNR | SSIM | edit met |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in summarise(rows):
        lines.append(f"| {s['snr_db']:g} | {s['turn']} | {s['instruction']} | {s['mode']} | {s['kinds']} | "
                     f"{s['symbols']:.0f} | {s['psnr']:.2f} | {s['ssim']:.3f} | {s['edit_met']:.0%} |")
    return "\n".join(lines) + "\n"

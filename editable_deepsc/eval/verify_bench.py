"""``edsc bench verify``: received edit success after 0, 1 and 2 rounds of receiver verification.

Samples are those of ``edsc eval`` (:mod:`editable_deepsc.eval.compare_sample`): held-out
teacher face ``test_seeds(n, offset)[i]``, instruction ``i mod |set|`` of the editing bench's
default set (those the editor supports), sample seed ``s_i = derive_seed(seed, "sample", i)``,
reference edit = invert + edit with no channel (``w0 → w_edit``). Round 0 sends ``w_edit``
through the set's default codec with the channel seed ``edsc eval`` uses for it, so the
success after 0 rounds is ``edsc eval``'s Editable-DeepSC success at that ``k``.

Per correction kind (``delta`` at each ``--delta-steps``; ``resend`` at each ``--resend-ks``) every sample runs
:meth:`Verifier.send <editable_deepsc.verify.rounds.Verifier.send>` with up to 2 rounds.
Success after ``r`` rounds is judged like ``edsc eval``: every target met on the receiver's
image after ``min(r, rounds taken)`` rounds relative to ``G(w0)``, and face-api identity
distance to ``G(w0)`` ≤ ``MAX_ID_DISTANCE``; symbols after ``r`` rounds are the forward
symbols spent by then (side information included). The noise-free reference is the same
criteria on ``G(w_edit)``.
"""

from __future__ import annotations

import time
from typing import Sequence

import torch
from tqdm import tqdm

from editable_deepsc.baselines.edit_at_receiver import edit_at_receiver
from editable_deepsc.channel.config import ChannelConfig
from editable_deepsc.eval.compare_run import _face, load_instructions, usable_instructions
from editable_deepsc.eval.compare_sample import success_of
from editable_deepsc.eval.edit_bench import MAX_ID_DISTANCE
from editable_deepsc.generator.teacher import load_teacher, test_seeds
from editable_deepsc.rng import derive_seed
from editable_deepsc.verify.rounds import DELTA_STEP, MAX_ROUNDS, goals_of
from editable_deepsc.verify.side_info import MESSAGE_BITS, side_info_symbols

ROUND_FIELDS = ("kind", "k", "side_symbols", "feedback_symbols", "met_rx", "nack", "heard_nack", "used")
"""What each entry of a record's ``rounds`` lists (a compact :class:`~editable_deepsc.verify.rounds.Round`)."""
TABLE_BEGIN, TABLE_END = "<!-- edsc bench verify: begin -->", "<!-- edsc bench verify: end -->"
"""Markers of the block ``--out`` rewrites in an existing page."""


def variants(corrections: Sequence[str], resend_ks: Sequence[int | None],
             delta_steps: Sequence[float] = (DELTA_STEP,)) -> list[tuple[str, str, int | None, float]]:
    """(label, correction, resend k, delta step) of each measured variant."""
    out = []
    for c in corrections:
        if c == "resend":
            out += [(f"resend k={k}" if k is not None else "resend", "resend", k, DELTA_STEP)
                    for k in (resend_ks or [None])]
        else:
            steps = list(delta_steps) or [DELTA_STEP]
            out += [(f"delta step={st:g}" if len(steps) > 1 else "delta", "delta", None, float(st)) for st in steps]
    return out


@torch.no_grad()
def _judge(system, w: torch.Tensor, targets, before, recon) -> bool:
    """``edsc eval``'s success of the image ``G(w)``: targets met vs ``G(w0)`` and identity kept."""
    img = system.rx.synthesise(w)
    attrs = tuple(dict.fromkeys(t.attribute for t in targets))
    g = system.guidance
    after = {a: v.reshape(-1).float() for a, v in g.measure(img, attrs).items()}
    dist = g.identity_distance(img, recon).reshape(-1).float()
    _, succ = success_of(targets, before, after, dist, MAX_ID_DISTANCE)
    return bool(succ[0])


def run_verify_bench(system, n: int, snrs: Sequence[float], channel: str = "awgn",
                     corrections: Sequence[str] = ("delta", "resend"), resend_ks: Sequence[int | None] = (None,),
                     delta_steps: Sequence[float] = (DELTA_STEP,), seed: int = 0, offset: int = 0, max_rounds: int = MAX_ROUNDS, progress: bool = True) -> dict:
    """Run the bench; return per-(SNR, variant) rows and per-sample records.

    Returns
    -------
    dict
        ``rows``: one per SNR × variant with ``success`` (list over rounds 0..max_rounds, %),
        ``symbols`` (mean forward symbols after each round), ``feedback_symbols`` (mean),
        ``corrected`` (% of samples with ≥ 1 correction), ``check_agrees`` (% where the
        receiver's final check equals the bench's "targets met"), ``side_info_ok`` (%),
        ``reference`` (noise-free success, %), ``k`` (one round's latent symbols), the final
        failures split into ``fail_targets`` (a target still unmet) and ``fail_identity_only``
        (targets met, identity lost: invisible to the receiver's check), and the target verdict; ``records``: one per sample × SNR × variant.
    """
    verifier = system.verifier
    vs = variants(corrections, resend_ks, delta_steps)
    for _, c, k, _ in vs:
        verifier.check(c, max_rounds)
        if c == "resend":
            verifier.resend_k(k)
    instructions = usable_instructions(load_instructions("default"), system)
    res = int(system.generator.resolution)
    k0 = int(system.tx.codec.k)
    seeds = test_seeds(n, offset)
    teacher = load_teacher()
    records = []
    t0 = time.perf_counter()
    for i in tqdm(range(n), desc="verify", disable=not progress, leave=False):
        s = derive_seed(seed, "sample", i)
        ins = instructions[i % len(instructions)]
        targets = tuple(ins.targets)
        face = _face(seeds[i], res, teacher)
        ref = edit_at_receiver(system, face, [targets], seed=s)
        w0, w_edit = ref.w_received, ref.w_edit
        recon = system.rx.synthesise(w0)
        attrs = tuple(dict.fromkeys(t.attribute for t in targets))
        before = {a: v.reshape(-1).float() for a, v in system.guidance.measure(recon, attrs).items()}
        ref_ok = _judge(system, w_edit, targets, before, recon)
        goals = goals_of(targets, {a: float(v[0]) for a, v in before.items()})
        for snr in snrs:
            ch = ChannelConfig(channel, float(snr))
            first_seed = derive_seed(s, "semantic", float(snr), k0)  # edsc eval's channel seed for this k
            round0: list[bool] = []  # round 0 is the same transmission for every variant: judged once
            for label, corr, k, step in vs:
                vl = verifier.send(w0, w_edit, goals, ch, derive_seed(s, "verify", float(snr)), correction=corr,
                                   max_rounds=max_rounds, first_seed=first_seed, resend_k=k, step=step)
                if not round0:
                    round0.append(_judge(system, vl.w_rx[0], targets, before, recon))
                judged = [round0[0]] + [_judge(system, w, targets, before, recon) for w in vl.w_rx[1:]]
                succ, syms = [], []
                for r in range(max_rounds + 1):
                    j = min(r, len(vl.rounds) - 1)
                    succ.append(judged[j])
                    syms.append(sum(x.symbols for x in vl.rounds[: j + 1]))
                met_bench = all(bool(m) for m in _met(system, vl.w_rx[-1], targets, before))
                records.append({
                    "sample_id": i, "instruction": ins.text, "snr_db": float(snr), "channel": channel,
                    "variant": label, "correction": corr, "reference_success": ref_ok, "success": succ,
                    "symbols": syms, "feedback_symbols": vl.feedback_symbols, "corrections": vl.corrections,
                    "met_rx": vl.rounds[-1].met_rx, "met_bench": met_bench, "side_info_ok": vl.side_ok,
                    "rounds": [[r.kind, r.k, r.side_symbols, r.feedback_symbols, r.met_rx, r.nack, r.heard_nack, r.used]
                               for r in vl.rounds],
                })
    seconds = time.perf_counter() - t0
    rows = _summarise(records, snrs, [v[0] for v in vs], k0, max_rounds)
    return {"rows": rows, "records": records, "round_fields": list(ROUND_FIELDS), "seconds": round(seconds, 1),
            "n": n, "k": k0,
            "side_info": {"message_bits": MESSAGE_BITS,
                          "symbols_per_target": {str(float(s)): side_info_symbols(1, float(s)) for s in snrs}}}


@torch.no_grad()
def _met(system, w, targets, before) -> list[bool]:
    from editable_deepsc.editing.criteria import target_met

    img = system.rx.synthesise(w)
    vals = system.guidance.measure(img, tuple(dict.fromkeys(t.attribute for t in targets)))
    return [bool(target_met(t, before[t.attribute], vals[t.attribute].reshape(-1).float())[0]) for t in targets]


def _pct(xs) -> float:
    xs = list(xs)
    return round(100.0 * sum(bool(x) for x in xs) / max(1, len(xs)), 1)


def _summarise(records: list[dict], snrs, labels, k0: int, max_rounds: int) -> list[dict]:
    rows = []
    for snr in snrs:
        for label in labels:
            rs = [r for r in records if r["snr_db"] == float(snr) and r["variant"] == label]
            if not rs:
                continue
            n = len(rs)
            success = [_pct(r["success"][j] for r in rs) for j in range(max_rounds + 1)]
            symbols = [round(sum(r["symbols"][j] for r in rs) / n, 1) for j in range(max_rounds + 1)]
            ref = _pct(r["reference_success"] for r in rs)
            rows.append({
                "snr_db": float(snr), "variant": label, "n": n, "k": k0, "reference": ref, "success": success,
                "symbols": symbols, "symbols_ratio": round(symbols[-1] / k0, 3),
                "feedback_symbols": round(sum(r["feedback_symbols"] for r in rs) / n, 2),
                "corrected": _pct(r["corrections"] > 0 for r in rs),
                "check_agrees": _pct(bool(r["met_rx"]) == r["met_bench"] for r in rs),
                "side_info_ok": _pct(r["side_info_ok"] for r in rs),
                "fail_targets": _pct(not r["met_bench"] for r in rs),
                "fail_identity_only": _pct(r["met_bench"] and not r["success"][-1] for r in rs),
                "target_met": bool(success[-1] >= ref - 3.0 and symbols[-1] <= 1.5 * k0),
            })
    return rows


def to_markdown(result: dict, command: str) -> str:
    """The measured block of ``docs/verify_rx.md`` (between :data:`TABLE_BEGIN` and :data:`TABLE_END`)."""
    rows = result["rows"]
    rounds = len(rows[0]["success"]) if rows else 0
    head = ("| SNR (dB) | correction | n | ref. success | "
            + " | ".join(f"success, {r} rd" for r in range(rounds)) + " | "
            + " | ".join(f"symbols, {r} rd" for r in range(rounds))
            + " | × one round | feedback sym. | corrected | rx check agrees | side info ok "
            "| final fail: target unmet | final fail: identity only | target |")
    sep = "|" + "---|" * (head.count("|") - 1)
    lines = [TABLE_BEGIN, "", "```bash", command, "```", "",
             f"n = {result['n']} samples, one round = k = {result['k']} symbols of the latent; "
             f"{result['seconds']:g} s on this machine. Success in %, symbols = mean forward complex symbols "
             "spent by then (side information included); \"target\": success within 3 points of the "
             "noise-free reference at ≤ 1.5× one round's symbols.", "", head, sep]
    for r in rows:
        lines.append(f"| {r['snr_db']:g} | {r['variant']} | {r['n']} | {r['reference']:.1f}% | "
                     + " | ".join(f"{x:.1f}%" for x in r["success"]) + " | "
                     + " | ".join(f"{x:.1f}" for x in r["symbols"])
                     + f" | {r['symbols_ratio']:.2f} | {r['feedback_symbols']:.1f} | {r['corrected']:.1f}% | "
                     f"{r['check_agrees']:.1f}% | {r['side_info_ok']:.1f}% | {r['fail_targets']:.1f}% | "
                     f"{r['fail_identity_only']:.1f}% | {'met' if r['target_met'] else 'not met'} |")
    lines += ["", TABLE_END]
    return "\n".join(lines) + "\n"


def merge_page(page: str | None, block: str) -> str:
    """``page`` with its measured block replaced by ``block`` (the block alone when there is no page
    or no markers in it)."""
    if page and TABLE_BEGIN in page and TABLE_END in page:
        a = page.index(TABLE_BEGIN)
        b = page.index(TABLE_END) + len(TABLE_END)
        return page[:a] + block.rstrip("\n") + page[b:]
    return block if not page else page.rstrip("\n") + "\n\n" + block


__all__ = ["TABLE_BEGIN", "TABLE_END", "merge_page", "run_verify_bench", "to_markdown", "variants"]

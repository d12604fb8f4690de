"""Measure the 5G-LDPC BLER table that the JPEG + LDPC baseline picks its MCS from.

For every candidate (modulation, code rate) in
:data:`editable_deepsc.channel.mcs.MCS_CANDIDATES` and each channel (AWGN;
Rayleigh with one gain per code block, known at the receiver) it simulates
``--blocks`` random code blocks of 1024 information bits per SNR point with the
default BP decoder (20 iterations) and stores BLER and BER in
``editable_deepsc/channel/mcs_bler.json``. Each curve starts 1 dB below the
Shannon limit of the MCS and stops at the first point with no block error
(AWGN, 0.5 dB grid) or BLER ≤ 2% (Rayleigh, Monte Carlo every 2 dB). The
Rayleigh BLER used for MCS selection is the AWGN curve averaged over
``|h|² ~ Exp(1)`` (1 dB grid); the Monte-Carlo values are kept as a check.
With ``--blocks 100`` it takes about 8 minutes on a busy 2-core machine.

Usage::

    python scripts/measure_mcs.py                       # writes the packaged table
    python scripts/measure_mcs.py --blocks 40 --out /tmp/mcs.json --channels awgn
    python scripts/measure_mcs.py --summary             # markdown: SNR needed for BLER < 10%
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from editable_deepsc.channel.mcs import TABLE_PATH, measure_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=100, help="code blocks per SNR point (default 100)")
    ap.add_argument("--channels", default="awgn,rayleigh", help="comma-separated (default awgn,rayleigh)")
    ap.add_argument("--decoder", default="cpp", help="BP decoder (default cpp)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=TABLE_PATH)
    ap.add_argument("--summary", action="store_true", help="print a markdown summary of --out and exit")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(args.out))
        return 0

    import torch

    torch.set_num_threads(1)
    t0 = time.time()
    table = measure_table(tuple(c.strip() for c in args.channels.split(",") if c.strip()),
                          num_blocks=args.blocks, seed=args.seed, decoder=args.decoder)
    table["command"] = "python scripts/measure_mcs.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table["seconds"] = round(time.time() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out} in {table['seconds']} s")
    return 0


def summary(path: Path) -> str:
    """Markdown: per MCS, the lowest table SNR with BLER < 10%, and the MCS chosen per SNR."""
    from editable_deepsc.channel.mcs import bler_at, load_table, select_mcs
    from editable_deepsc.channel.qam import MODULATIONS

    tab = load_table(path)
    lines = ["| modulation | rate | bits/use | AWGN SNR for BLER<10% | Rayleigh SNR for BLER<10% |",
             "|---|---|---|---|---|"]
    by = {}
    for e in tab["entries"]:
        grid = tab["snr_grids_db"][e["channel"]]
        ok = [s for s in grid if bler_at(e, grid, s) < 0.1]
        by.setdefault((e["modulation"], e["code_rate"]), {})[e["channel"]] = f"{min(ok):g} dB" if ok else "-"
    for (mod, r), d in by.items():
        lines.append(f"| {mod} | {r:.3f} | {MODULATIONS[mod][1] * r:.2f} | {d.get('awgn', '-')} | {d.get('rayleigh', '-')} |")
    lines += ["", "| SNR (dB) | AWGN choice | Rayleigh choice |", "|---|---|---|"]
    for s in range(-10, 41, 2):
        cells = []
        for ch in ("awgn", "rayleigh"):
            if ch not in tab["snr_grids_db"]:
                cells.append("-")
                continue
            c = select_mcs(float(s), ch, table=tab)
            cells.append(f"{c.modulation} {c.code_rate:.3f}" + ("" if c.reliable else " (none < 10%)"))
        lines.append(f"| {s} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

"""``edsc bench ldpc``: information-bit decode throughput of each LDPC decoder, same code and noise."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--k", "k", default=1024, show_default=True, type=int, help="Information bits per block.")
@click.option("--rate", "code_rate", default=0.5, show_default=True, type=float, help="Code rate.")
@click.option("--modulation", default="qpsk", show_default=True)
@click.option("--snr", "snr_db", default=1.5, show_default=True, type=float, help="SNR in dB.")
@click.option("--blocks", "num_blocks", default=100, show_default=True, type=int)
@click.option("--decoders", default="sionna,cpp,cpp-minsum", show_default=True,
              help="Comma-separated; the first is the reference of the ratios.")
@click.option("--threads", default=1, show_default=True, type=int, help="torch threads (the C++ decoder uses one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--seed", default=0, show_default=True, type=int)
def ldpc(k: int, code_rate: float, modulation: str, snr_db: float, num_blocks: int, decoders: str, threads: int,
         as_json: bool, seed: int) -> None:
    """Decode the same noisy 5G-LDPC words with every decoder; print info bits/s and ratios.

    \b
    Example:
      edsc bench ldpc --k 1024 --rate 0.5 --snr 1.5 --blocks 100
    """
    import torch

    from editable_deepsc.channel import check_snr
    from editable_deepsc.channel.ldpc_bench import bench_decoders
    from editable_deepsc.errors import BadInput

    if num_blocks < 1 or threads < 1:
        raise BadInput("--blocks and --threads must be >= 1")
    torch.set_num_threads(threads)
    res = bench_decoders(k=k, code_rate=code_rate, modulation=modulation, snr_db=check_snr(snr_db),
                         num_blocks=num_blocks, decoders=tuple(d for d in decoders.split(",") if d.strip()),
                         seed=seed)
    if as_json:
        click.echo(json.dumps(res))
        return
    c = res["code"]
    ref = res["results"][0]["decoder"]
    click.echo(f"5G LDPC k={c['k']} n={c['n']} (Z={c['lifting_z']}), {c['modulation']}, {res['channel']} "
               f"{res['snr_db']:g} dB, {res['num_blocks']} blocks, {c['num_iter']} iterations max")
    click.echo(f"{'decoder':>11}  {'Mbit/s':>8}  {'ratio':>6}  {'BLER':>6}  {'BER':>9}  same bits as {ref}")
    for r in res["results"]:
        click.echo(f"{r['decoder']:>11}  {r['info_bits_per_s'] / 1e6:8.4f}  {r[f'ratio_vs_{ref}']:6.2f}  "
                   f"{r['bler']:6.3f}  {r['ber']:9.2e}  {r[f'same_bits_as_{ref}']:.3f}")

"""``edsc train exits``: distil the low-resolution exits of the FFHQ generator (resumable)."""

from __future__ import annotations

import json

import click

from editable_deepsc.cli.options import no_export_option, output_help, seed_option, set_threads, threads_option, write_result


@click.command("exits")
@click.option("--n", default=192, show_default=True, type=int, help="Training latents (one full 1024 synthesis each).")
@click.option("--steps", default=0, show_default=True, type=int,
              help="Adam steps on the exit heads after the closed-form fit (0: the closed form alone).")
@click.option("--convs", default=0, show_default=True, type=click.IntRange(0, 8),
              help="Styled 1x1/3x3 convolutions per head (0: a modulated 1x1 to the Haar bands, fitted in closed form).")
@click.option("--batch", default=4, show_default=True, type=int, help="Latents per step.")
@click.option("--crop", default=32, show_default=True, type=int, help="Side of the random feature crop per head.")
@click.option("--lr", default=2e-3, show_default=True, type=float, help="Adam learning rate (cosine decay).")
@click.option("--workdir", type=click.Path(file_okay=False), default=".edsc-cache/exits-ffhq", show_default=True,
              help="Teacher shards and the training checkpoint (a rerun resumes).")
@click.option("--eval-n", default=200, show_default=True, type=int,
              help="Held-out latents to measure the exits on afterwards (0: skip; results in <workdir>/held_out.json).")
@click.option("--eval-out", type=click.Path(dir_okay=False), default=None,
              help=output_help("the held-out figures as JSON, with the command line (`edsc zoo card --section ffhq` "
                               "reads docs/ffhq_exits_eval.json)"))  # fmt: skip
@no_export_option
@seed_option()
@threads_option()
def exits(n: int, steps: int, convs: int, batch: int, crop: int, lr: float, workdir: str, eval_n: int, eval_out: str | None,
          no_export: bool, seed: int, threads: int | None) -> None:  # fmt: skip
    """Train the 128x128 and 256x256 exits of mobilestylegan-ffhq by distillation.

    The full 1024 synthesis of each training latent runs once (features + area-downsampled
    targets cached in shards under --workdir). Both exits read block 4 (128x128 features);
    each head is a modulated 1x1 convolution to the Haar sub-bands, set by ridge regression
    on the cached latents (closed form), then optionally fine-tuned by --steps Adam steps on
    random crops. The 128 exit is its head's 256 image area-downsampled. Writes zoo/weights/edsc-ffhq-exits.safetensors and its card, then measures the
    exits against the downsampled full image on --eval-n held-out latents (PSNR, proxy LPIPS,
    face-descriptor distance, speed-up, and the PSNR after an oracle per-image colour fit as a
    diagnosis).

    \b
    Examples:
      edsc train exits --n 144
      edsc train exits --n 144 --eval-n 200 --no-export --eval-out docs/ffhq_exits_eval.json
    """
    from editable_deepsc.errors import BadInput
    from editable_deepsc.train.exits import run_exits

    if n < 1 or steps < 0 or convs < 0 or batch < 1 or crop < 4 or eval_n < 0:
        raise BadInput("--n and --batch must be >= 1, --steps, --convs and --eval-n >= 0, --crop >= 4")
    if eval_out:
        if eval_n < 1:
            raise BadInput("--eval-out needs --eval-n >= 1")
        from editable_deepsc.imaging.io import check_output

        check_output(eval_out, "--eval-out")
    set_threads(threads)
    res = run_exits(n=n, steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, work_dir=workdir,
                    export=not no_export, eval_n=eval_n, convs=convs, log=lambda m: click.echo(m, err=True))  # fmt: skip
    if eval_out:
        cmd = (f"edsc train exits --n {n} --steps {steps} --convs {convs} --eval-n {eval_n}"
               + (" --no-export" if no_export else "") + (f" --threads {threads}" if threads else ""))  # fmt: skip
        write_result({"command": cmd, **res["held_out"]}, eval_out, as_json=False)
    click.echo(json.dumps(res, indent=1))

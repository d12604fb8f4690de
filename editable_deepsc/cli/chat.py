"""``edsc chat``: conversational editing of one image over a simulated channel."""

from __future__ import annotations

import json
from pathlib import Path

import click

from editable_deepsc.cli.edit import CHANNEL_CHOICES, build_system, system_options
from editable_deepsc.cli.options import face_option, verify_options

HELP = """commands: an instruction ("make her smile", "a bit more", "now older"), undo, show,
snr <dB>, channel awgn|rayleigh, log, help, quit"""


def _print_turn(t, out_dir: Path) -> None:
    what = ", ".join(t.targets) if t.targets else t.action
    click.echo(f"[turn {t.index}] {what}: sent {t.symbols} symbols ({t.kind}, CBR {t.cbr:.5f}) over "
               f"{t.channel} at {t.snr_db:g} dB; received vs intended PSNR {t.psnr:.2f} dB, SSIM {t.ssim:.3f}")
    if t.verify is not None:
        click.echo(f"  verified at the receiver: {t.rounds} {t.verify['correction']} correction(s) "
                   f"(symbols above include them and {t.verify['rounds'][0]['side_symbols']} of side information), "
                   f"{t.feedback_symbols} feedback symbols; receiver's check: "
                   f"{'met' if t.verify['met_rx'] else 'not met'}")
    if t.scores_rx:
        click.echo("  " + ", ".join(f"{a} {v:.3f}" for a, v in t.scores_rx.items()))
    click.echo(f"  saved {out_dir / f'turn_{t.index:02d}.png'}")


@click.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--snr", type=float, default=6.0, show_default=True, help="Initial channel SNR in dB.")
@click.option("--channel", type=click.Choice(CHANNEL_CHOICES, case_sensitive=False), default="awgn",
              show_default=True)
@click.option("--out-dir", type=click.Path(file_okay=False), default="out/chat", show_default=True,
              help="Received image of every turn and session.json go here (checked before any work; "
                   "existing files are replaced).")
@click.option("--refresh-every", type=int, default=4, show_default=True,
              help="Send the full latent every this many edits (follow-ups send only the delta).")
@verify_options
@face_option
@system_options
def chat(image: str, snr: float, channel: str, out_dir: str, refresh_every: int, verify_rx: bool, max_rounds: int,
         correction: str, resend_k: int | None, face: int | None, models: str,
         preset: str, inversion: str, codec: str | None, jecc: bool, no_align: bool, seed: int) -> None:
    """Edit IMAGE turn by turn: type instructions, `undo`, `show`, `quit`.

    Every turn prints the symbols sent and the received quality and saves the
    received image (with --verify-rx every edit is checked at the receiver and
    corrected, its rounds and symbols in the log); session.json (the log) is rewritten after every turn, so an
    interrupted chat (Ctrl-C) keeps everything done so far.

    \b
    Example:
      edsc chat face.png --snr 6 --channel rayleigh --out-dir out/chat
    """
    from editable_deepsc.channel.config import ChannelConfig
    from editable_deepsc.errors import EdscError
    from editable_deepsc.imaging import atomic_write, check_output_dir, load_image, save_image

    ch = ChannelConfig(channel, snr)
    out = check_output_dir(out_dir, "--out-dir")
    img = load_image(image)
    system = build_system(models, preset, inversion, codec, jecc, no_align, refresh_every=refresh_every)
    prepared = system.prepare_input(img, face=face)
    if prepared.face_note():
        click.echo(prepared.face_note(), err=True)
    session = system.session(prepared if system.tx.takes_photos else prepared.image, ch, seed=seed, verify_rx=verify_rx, max_rounds=max_rounds,
                             correction=correction, resend_k=resend_k)
    save_image(session.source, out / "source.png")
    save_image(session.current_rx_image, out / "turn_start.png")
    click.echo(HELP)

    def save_log() -> None:
        log = {**session.log(), "face": prepared.face_json()}
        atomic_write(out / "session.json", lambda tmp: Path(tmp).write_text(json.dumps(log, indent=1) + "\n"))

    save_log()
    while True:
        try:
            line = click.prompt("you", prompt_suffix="> ", default="", show_default=False).strip()
        except (EOFError, click.exceptions.Abort):
            click.echo("")
            break
        if not line:
            continue
        cmd, _, arg = line.partition(" ")
        cmd = cmd.lower()
        try:
            if cmd in ("quit", "exit", "q"):
                break
            if cmd == "help":
                click.echo(HELP)
                continue
            if cmd == "show":
                path = out / "current.png"
                save_image(session.current_rx_image, path)
                click.echo(f"receiver shows {path} ({len(session.w_rx)} edits applied)")
                continue
            if cmd == "log":
                click.echo(json.dumps(session.log(), indent=1))
                continue
            if cmd == "snr":
                session.set_channel(ChannelConfig(session.channel.name, arg))
                click.echo(f"SNR now {session.channel.snr_db:g} dB")
                continue
            if cmd == "channel":
                session.set_channel(ChannelConfig(arg, session.channel.snr_db))
                click.echo(f"channel now {session.channel.name}")
                continue
            turn = session.undo() if cmd == "undo" and not arg else session.send(line)
        except EdscError as e:
            click.echo(f"error: {e}")
            continue
        save_image(turn.rx_image, out / f"turn_{turn.index:02d}.png")
        save_log()
        _print_turn(turn, out)
    save_log()
    click.echo(f"session saved to {out / 'session.json'} ({len(session.turns)} turns, "
               f"{sum(t.symbols for t in session.turns)} symbols)")

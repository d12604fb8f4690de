"""``edsc serve``: the interactive web demo (conversational editing over a simulated channel)."""

from __future__ import annotations

import click

from editable_deepsc.cli.edit import system_options


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only; 0.0.0.0 exposes the demo).")
@click.option("--port", default=7860, show_default=True, type=int, help="TCP port.")
@click.option("--snr", type=float, default=6.0, show_default=True, help="Initial SNR of new sessions (dB).")
@click.option("--max-queue", default=4, show_default=True, type=int,
              help="Requests that may wait for the model worker; more are told the server is busy.")
@click.option("--max-sessions", default=16, show_default=True, type=int, help="Sessions kept in memory.")
@click.option("--refresh-every", type=int, default=4, show_default=True,
              help="Send the full latent every this many edits (follow-ups send only the delta).")
@system_options
def serve(host: str, port: int, snr: float, max_queue: int, max_sessions: int, refresh_every: int, models: str,
          preset: str, inversion: str, codec: str | None, jecc: bool, no_align: bool, seed: int) -> None:
    """Start the web demo on http://HOST:PORT (Ctrl-C stops it).

    The page: upload a photo or pick a sample, type instructions turn by turn,
    change SNR/channel, undo/reset, compare with data-oriented baselines, and
    download the received image and the session log. Models load once; requests
    run one at a time (--seed is the default seed of new sessions). The port is
    taken before the models load, so a busy port fails at once.

    Requests must name HOST in their Host header (any name when HOST is 0.0.0.0 or ::)
    and come from the page's own origin; one client holds at most 4 sessions.

    \b
    Examples:
      edsc serve
      edsc serve --port 8080 --preset fast
    """
    from editable_deepsc.channel.config import ChannelConfig
    from editable_deepsc.errors import BadInput
    from editable_deepsc.web.server import allowed_hosts_for, bind_socket, check_bind

    check_bind(host, port)
    if max_queue < 0 or max_sessions < 1:
        raise BadInput("--max-queue must be >= 0 and --max-sessions >= 1")
    channel = ChannelConfig("awgn", snr)
    sock = bind_socket(host, port)
    from editable_deepsc.cli.edit import build_system
    from editable_deepsc.web.app import create_app
    from editable_deepsc.web.server import serve as run_server
    from editable_deepsc.web.sessions import SessionLimits

    click.echo("loading models ...", err=True)
    system = build_system(models, preset, inversion, codec, jecc, no_align, refresh_every=refresh_every)
    app = create_app(system, max_queue=max_queue,
                     session_limits=SessionLimits(max_sessions=max_sessions,
                                                  max_per_client=min(max_sessions, SessionLimits.max_per_client)),
                     default_channel=channel, default_seed=seed, allowed_hosts=allowed_hosts_for(host))
    click.echo(f"Editable-DeepSC demo on http://{host}:{port}  (Ctrl-C to stop)", err=True)
    run_server(app, sock=sock)

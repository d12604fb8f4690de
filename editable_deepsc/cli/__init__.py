"""The ``edsc`` command line: a thin layer over the library API.

Each verb lives in its own module of this package and is registered in
:data:`VERBS`. Errors derived from :class:`~editable_deepsc.errors.EdscError`
become a one-line ``error: ...`` on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import sys

import click

from editable_deepsc import __version__
from editable_deepsc.cli.lazy import LazyGroup
from editable_deepsc.errors import EdscError

# verb name -> "module:attribute" (imported lazily so `edsc --help` stays fast)
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("editable_deepsc.cli.demo:demo", "Run the main job on the built-in models."),
    "transmit": ("editable_deepsc.cli.transmit:transmit", "Send an image over a channel with a data-oriented method."),
    "edit": ("editable_deepsc.cli.edit:edit", "Edit an image under an instruction and send the edited latent."),
    "chat": ("editable_deepsc.cli.chat:chat", "Conversational editing over a simulated channel (multi-turn)."),
    "serve": ("editable_deepsc.cli.serve:serve", "Web demo: conversational editing in the browser (127.0.0.1:7860)."),
    "bench": ("editable_deepsc.cli.bench:bench", "Benchmarks (ratios against an in-run baseline)."),
    "train": ("editable_deepsc.cli.train:train", "Train a built-in model (resumable)."),
    "parse": ("editable_deepsc.cli.parse:parse", "Parse an edit instruction into edit targets."),
    "zoo": ("editable_deepsc.cli.zoo:zoo", "Registered models: list, verify sha256, convert third-party weights, model card."),
    "invert": ("editable_deepsc.cli.invert:invert", "Invert a face image into the generator's W+ latent space."),
    "analyze": ("editable_deepsc.cli.analyze:analyze", "Face analysis of an image: identity, age, gender, expression, pose."),
    "data": ("editable_deepsc.cli.data:data", "Real photos to measure on: list the sets, extract a split."),
    "sample": ("editable_deepsc.cli.sample:sample", "Draw a grid of random faces from a model set's generator."),
    "eval": ("editable_deepsc.cli.eval:eval_", "Compare Editable-DeepSC with DeepJSCC and JPEG+LDPC (methods x SNR x CBR)."),
}


@click.group(cls=LazyGroup, lazy=VERBS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edsc")
def cli() -> None:
    """Editable-DeepSC: semantic communication for text-instructed image editing.

    \b
    Examples:
      edsc demo
      edsc transmit face.png --method jpeg-ldpc --cbr 0.1 --snr 6 --out rx.png --json
      edsc bench ldpc
    """


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (used by tests as ``main([...])``)."""
    try:
        cli.main(args=argv, prog_name="edsc", standalone_mode=False)
    except EdscError as e:
        click.echo(f"error: {e}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as e:  # usage errors too: one line, like every other bad input
        click.echo(f"error: {e.format_message()}", err=True)
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    return 0


def entry() -> None:  # console script
    sys.exit(main())

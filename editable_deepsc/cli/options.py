"""Click options shared by several ``edsc`` commands (trainers and benches).

Each helper returns a decorator; stacking them keeps the options in the order
they are listed, so ``--help`` reads the same as with the options written out.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import click

from editable_deepsc.vocab import DEFAULT_MODEL_SET, MAX_VERIFY_ROUNDS, MODEL_SETS

F = TypeVar("F", bound=Callable)

#: ``--no-export`` of the trainers.
no_export_option = click.option(
    "--no-export", is_flag=True, help="Do not write the weights and card into the zoo at the end."
)
#: ``--device`` of the trainers.
device_option = click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")


def stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """One decorator applying ``decorators`` as if written one above the other, first on top."""

    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def seed_option(help: str | None = None) -> Callable[[F], F]:
    """``--seed`` (int, default 0)."""
    return click.option("--seed", default=0, show_default=True, type=int, help=help)


def threads_option(help: str = "torch CPU threads.") -> Callable[[F], F]:
    """``--threads`` (int, default: torch's choice); apply it with :func:`set_threads`."""
    return click.option("--threads", default=None, type=int, help=help)


def quiet_option(help: str = "No progress bar.") -> Callable[[F], F]:
    """``--quiet`` flag (no progress bar)."""
    return click.option("--quiet", is_flag=True, help=help)


@dataclass(frozen=True)
class RunOptions:
    """The options every trainer shares, handed to it as one ``run`` argument (:func:`trainer_options`)."""

    seed: int
    threads: int | None
    no_export: bool
    quiet: bool
    device: str = "cpu"


def trainer_options(device: bool = False) -> Callable[[F], F]:
    """``--seed [--device] --threads --no-export --quiet`` of the ``edsc train`` commands.

    The command receives them as one ``run: RunOptions`` argument.
    """

    def apply(f: F) -> F:
        @functools.wraps(f)
        def command(*args: Any, seed: int, threads: int | None, no_export: bool, quiet: bool,
                    device: str = "cpu", **kwargs: Any) -> Any:
            return f(*args, run=RunOptions(seed, threads, no_export, quiet, device), **kwargs)

        return stack(
            seed_option("Root seed of the run."),
            *([device_option] if device else []),
            threads_option("torch CPU threads (default: torch's choice)."),
            no_export_option,
            quiet_option(),
        )(command)

    return apply


def _known_set(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from editable_deepsc.errors import BadInput

    if value not in MODEL_SETS:
        raise BadInput(f"unknown model set {value!r} (choose from: {', '.join(MODEL_SETS)})")
    return value


def _usable_set(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from editable_deepsc.zoo.sets import load_set

    load_set(_known_set(ctx, param, value)).check()
    return value


def models_option(help: str = "Model set: the generator and the models trained for it.",
                  check: bool = True) -> Callable[[F], F]:
    """``--models SET`` (default :data:`~editable_deepsc.vocab.DEFAULT_MODEL_SET`).

    An unknown set exits 2; with ``check`` (verbs that use the set's models, not
    the trainers that make them) so does a set with a missing or corrupt member,
    named in the message.
    """
    return click.option("--models", "models", default=DEFAULT_MODEL_SET, show_default=True, metavar="SET",
                        callback=_usable_set if check else _known_set, help=help)


def member_option(flag: str, dest: str, role: str, help: str) -> Callable[[F], F]:
    """An option naming one model explicitly; unset, :func:`set_member` takes the ``role`` of ``--models``."""
    return click.option(flag, dest, default=None, show_default=f"the {role} of --models", help=help)


def set_member(models: str, role: str, given: str | None = None) -> str:
    """``given`` if an option named a model, else the ``role`` member of the model set ``models``."""
    if given:
        return given
    from editable_deepsc.zoo.sets import load_set

    return load_set(models).member(role)


def verify_options(f: F) -> F:
    """``--verify-rx --max-rounds --correction --resend-k`` of ``edsc edit`` and ``edsc chat``."""
    from editable_deepsc.vocab import CORRECTIONS, DEFAULT_CORRECTION

    return stack(
        click.option("--verify-rx", is_flag=True,
                     help="Receiver-verified edit: the targets' goals travel as side information (counted), the "
                          "receiver checks its image with the face nets and asks for corrections by a feedback bit."),
        click.option("--max-rounds", type=int, default=MAX_VERIFY_ROUNDS, show_default=True,
                     help="With --verify-rx: most correction rounds."),
        click.option("--correction", type=click.Choice(CORRECTIONS), default=DEFAULT_CORRECTION, show_default=True,
                     help="With --verify-rx: strengthen the edit by a delta in the set's delta codec, or resend the "
                          "latent at more symbols and fuse the estimates."),
        click.option("--resend-k", type=int, default=None,
                     help="With --correction resend: k of the codec it uses (default: the set's next larger than "
                          "the first codec's, else the same)."),
    )(f)


def face_option(f: F) -> F:
    """``--face N``: which of several detected faces to use (0 = the highest detector score)."""
    return click.option("--face", type=int, default=None,
                        help="Which detected face to use when the photo holds several (faces64: 0 = highest "
                             "detector score, the default; --models ffhq: counted from the left, default the "
                             "largest); the JSON says how many were found.")(f)


def output_help(what: str) -> str:
    """``--help`` text of an output path option (checked first, written atomically, replaced if present)."""
    return (f"Write {what} here (checked before any work; written atomically; an existing file is replaced).")


def generator_option(help: str = "Zoo name of the generator.") -> Callable[[F], F]:
    """``--models SET --generator NAME`` of the trainers (the generator defaults to the set's)."""
    return stack(models_option(check=False), member_option("--generator", "generator_name", "generator", help))


def artefact_options(zoo_name: str) -> Callable[[F], F]:
    """``--register/--no-register --out`` of the commands that fit one safetensors file for a generator.

    ``zoo_name`` is how the help names the registered artefact (e.g. ``<generator>-critic``).
    """
    return stack(
        click.option("--register/--no-register", default=True, show_default=True,
                     help=f"Save to the zoo as {zoo_name}."),
        click.option("--out", type=click.Path(dir_okay=False), default=None,
                     help="Also write the safetensors here."),
    )


def loss_weight_options(defaults: Any, perceptual_help: str, identity_help: str) -> Callable[[F], F]:
    """``--perceptual-weight --identity-weight`` of the trainers, defaults read from a config class."""
    return stack(
        click.option("--perceptual-weight", default=defaults.perceptual_weight, show_default=True, type=float,
                     help=perceptual_help),
        click.option("--identity-weight", default=defaults.identity_weight, show_default=True, type=float,
                     help=identity_help),
    )


def bench_options(seed_help: str | None = None, quiet_help: str = "No progress bar.") -> Callable[[F], F]:
    """``--threads --seed --quiet`` of the ``edsc bench`` commands."""
    return stack(threads_option(), seed_option(seed_help), quiet_option(quiet_help))


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` when ``threads`` is given (non-zero)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def write_result(result: dict, out: str | None, as_json: bool) -> bool:
    """Write a bench ``result`` as JSON to ``out`` (atomically, if given) and print it if ``as_json``.

    Returns ``as_json``, so a caller prints its tables only when it is false. Check ``out`` with
    :func:`editable_deepsc.imaging.io.check_output` before the work that makes ``result``.
    """
    import json

    if out:
        from editable_deepsc.imaging.io import atomic_write

        text = json.dumps(result, indent=1) + "\n"
        atomic_write(out, lambda tmp: Path(tmp).write_text(text))
    if as_json:
        click.echo(json.dumps(result, indent=1))
    return as_json


# ---------------------------------------------------------------------- bounds of numeric options
_BIG = 10**7
#: Parameter name → (lowest, highest, lowest excluded) of every integer or float option of every
#: verb; :func:`bound_numeric_options` turns each into a range type when the verb is looked up, so
#: ``--help`` shows the range and a value outside it exits 2 with one ``error:`` line before any work.
#: ``tests/test_bad_input.py`` checks that no numeric option of any verb is missing here. Lower
#: bounds are loose where the command itself explains a finer rule (e.g. ``--calibration-faces``
#: must not exceed ``--n-val``).
NUMERIC_BOUNDS: dict[str, tuple[float, float, bool]] = {
    # counts of faces, samples, blocks
    "n": (1, 100_000, False), "n_teacher": (1, 64, False), "n_val": (1, 100_000, False),
    "jecc_n": (1, 100_000, False), "jecc_instructions": (0, 1_000, False), "variants": (0, 64, False),
    "calibration_faces": (0, 100_000, False), "num_blocks": (1, 1_000_000, False), "pool": (1, 1_000_000, False),
    "fid_samples": (1, 1_000_000, False), "inversion_faces": (1, 100_000, False), "grid_samples": (0, 64, False),
    "offset": (0, 1_000_000, False), "celeba_n": (0, 1_000_000, False), "limit": (1, 10_000_000, False),
    "eval_n": (0, 100_000, False), "reps": (1, 1_000, False), "full_backward_max_batch": (0, 4_096, False),
    "size": (8, 4_096, False), "crop": (1, 4_096, False), "truncation": (0.0, 1.5, True),
    # sizes and steps
    "k": (1, 16_384, False), "delta_k": (1, 16_384, False), "hidden": (1, 16_384, False), "width": (1, 4_096, False),
    "steps": (0, _BIG, False), "warmup_steps": (0, _BIG, False), "optimize_steps": (1, _BIG, False),
    "inversion_steps": (1, _BIG, False), "stop_at": (1, _BIG, False), "checkpoint_every": (1, _BIG, False),
    "progressive_every": (1, _BIG, False), "batch_size": (1, 4_096, False), "batch": (1, 4_096, False),
    "image_batch": (1, 4_096, False), "fid_input_size": (8, 1_024, False), "fading_block": (1, 10**9, False),
    "refresh_every": (1, 1_000, False), "max_rounds": (0, MAX_VERIFY_ROUNDS, False), "resend_k": (1, 16_384, False),
    # channel (SNRs: see SNR_OPTIONS)
    "code_rate": (0.0, 1.0, True),
    # editing and training weights
    "strength": (0.0, 4.0, True), "lr": (0.0, 10.0, True), "pixel_weight": (0.0, 1_000.0, False),
    "perceptual_weight": (0.0, 1_000.0, False), "identity_weight": (0.0, 1_000.0, False),
    "inversion_frac": (0.0, 1.0, False), "mix_prob": (0.0, 1.0, False), "min_success": (0.0, 1.0, False),
    "attribute_weight": (0.0, 1_000.0, False), "edit_frac": (0.0, 1.0, False), "photo_pool": (0, 700, False),
    "metric_samples": (0, 1_000_000, False),
    "max_id_distance": (0.0, 2.0, False), "stop_id_distance": (0.0, 2.0, False),
    "max_minutes": (0.0, 1e6, True),
    # process and server
    "seed": (0, 2**63 - 1, False), "threads": (1, 1_024, False), "workers": (1, 256, False),
    "port": (0, 65_535, False), "max_queue": (0, 1_024, False), "max_sessions": (1, 4_096, False),
    "face": (0, 63, False),
}


OWN_CHECKS: dict[str, frozenset[str]] = {"sample": frozenset({"n", "truncation", "size"}),
                                         "extract": frozenset({"limit"})}
"""Command name → numeric options the command checks itself with a finer message (left unbounded
here; their own tests cover them)."""


class SnrType(click.ParamType):
    """An SNR in dB, checked like the library does (:func:`~editable_deepsc.channel.snr.check_snr`)."""

    name = "dB"

    def convert(self, value, param, ctx):
        from editable_deepsc.channel.snr import SNR_RANGE_DB, check_snr
        from editable_deepsc.errors import BadInput

        try:
            return check_snr(value)
        except BadInput as e:
            self.fail(str(e), param, ctx)
        return SNR_RANGE_DB  # pragma: no cover - fail() raises

    def get_metavar(self, param, ctx=None):
        return "DB"


SNR_OPTIONS = frozenset({"snr", "snr_db", "headline_snr", "snr_min", "snr_max"})
"""Float options that are SNRs (typed :class:`SnrType`: the range [-10, 40] dB of the library)."""


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses NaN and infinities."""

    def convert(self, value, param, ctx):
        v = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(v, param, ctx)


def bound_numeric_options(cmd: click.Command) -> click.Command:
    """Give every integer/float option of ``cmd`` its range from :data:`NUMERIC_BOUNDS` (in place).

    Options that already have a range type, and names not in the table, are left as they are
    (``tests/test_bad_input.py`` fails on the latter).
    """
    if getattr(cmd, "_edsc_bounded", False):
        return cmd
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name in SNR_OPTIONS and type(p.type) is click.types.FloatParamType:
            p.type = SnrType()
            continue
        if not isinstance(p, click.Option) or p.name not in NUMERIC_BOUNDS:
            continue
        if p.name in OWN_CHECKS.get(cmd.name or "", ()):
            continue
        lo, hi, open_lo = NUMERIC_BOUNDS[p.name]
        if type(p.type) is click.types.IntParamType:
            p.type = click.IntRange(int(lo), int(hi), min_open=open_lo)
        elif type(p.type) is click.types.FloatParamType:
            p.type = FiniteFloatRange(float(lo), float(hi), min_open=open_lo)
    if isinstance(cmd, click.Group):  # plain groups (lazy ones bound their commands when handing them out)
        for sub in cmd.commands.values():
            bound_numeric_options(sub)
    cmd._edsc_bounded = True  # type: ignore[attr-defined]
    return cmd

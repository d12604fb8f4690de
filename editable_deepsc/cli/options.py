"""Click options shared by several ``edsc`` commands (trainers and benches).

Each helper returns a decorator; stacking them keeps the options in the order
they are listed, so ``--help`` reads the same as with the options written out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import click

from editable_deepsc.vocab import DEFAULT_MODEL_SET, MODEL_SETS

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

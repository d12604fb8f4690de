"""``edsc parse``: show what an instruction asks for (or score the parser on a test set)."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("instruction", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of one line per target.")
@click.option("--eval", "eval_path", type=click.Path(dir_okay=False),
              help="Score the parser on a JSONL instruction set instead (see editable_deepsc.text.evaluate).")
@click.option("--seed", default=0, show_default=True, type=int, help="Unused (parsing is deterministic); "
              "accepted like every entry point.")
def parse(instruction: str | None, as_json: bool, eval_path: str | None, seed: int) -> None:
    """Parse an edit INSTRUCTION into edit targets.

    Unsupported instructions ("add a hat") exit with code 2 and name the nearest
    supported edit.

    \b
    Examples:
      edsc parse "make her smile a bit more"
      edsc parse "smiling and 20 years older" --json
      edsc parse --eval tests/data/instructions.jsonl
    """
    from editable_deepsc.errors import BadInput
    from editable_deepsc.text.parser import default_parser

    if eval_path is not None:
        from editable_deepsc.text.evaluate import evaluate_parser

        report = evaluate_parser(eval_path, default_parser())
        if as_json:
            click.echo(json.dumps(report.to_json(), indent=1))
            return
        click.echo(f"accuracy {report.accuracy:.4f} ({report.correct}/{report.total})")
        for cat, (ok, n) in report.per_category.items():
            click.echo(f"  {cat:<40} {ok}/{n}")
        for f in report.failures:
            click.echo(f"  FAIL [{f['category']}] {f['text']!r}: expected {f['expected']}, got {f['got']}")
        return
    if instruction is None:
        raise BadInput("give an INSTRUCTION or --eval FILE")
    parsed = default_parser().parse(instruction)
    if as_json:
        click.echo(json.dumps(parsed.to_json(), indent=1))
        return
    if parsed.followup is not None:
        click.echo(f"follow-up: {parsed.followup.kind} (x{parsed.followup.strength:g})")
    for t in parsed.targets:
        click.echo(t.describe())
    click.echo(f"confidence {parsed.confidence:.2f}")

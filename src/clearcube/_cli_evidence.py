"""The command line's evidence commands: ``review`` (a person's decision on a scene of a run)
and ``bundle`` (the run as one evidence file for a verifier). Registered on the group in
:mod:`clearcube.cli`."""

from __future__ import annotations

import click

from ._cli_output import logging_options, stdout_reserved

__all__ = ["review_cmd"]


@click.command("review")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("scene_id")
@click.option("--accept", "verdict", flag_value="accept", help="Use the scene.")
@click.option("--reject", "verdict", flag_value="reject", help="Exclude the scene.")
@click.option("--reason", required=True, help="Why (recorded in the audit trail).")
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="PATH",
    help="The run's Ed25519 private key (default $CLEARCUBE_SIGNING_KEY): a signed run's "
    "trail stays signed.",
)
@logging_options
def review_cmd(
    out_dir: str, scene_id: str, verdict: str | None, reason: str, signing_key: str | None
) -> None:
    """Record a decision on SCENE_ID of the run in OUT_DIR (e.g. a scene of its review.jsonl):
    the next `clearcube run` of the same config into OUT_DIR, and `clearcube composite`,
    apply it."""
    from .review import resolve

    if verdict is None:
        raise click.UsageError("give --accept or --reject")
    with stdout_reserved():
        done = resolve(
            out_dir,
            scene_id,
            accept=verdict == "accept",
            reason=reason,
            signing_key=signing_key,
        )
    click.echo(f"{done.id}: {done.word} ({done.reason}); audit record seq {done.seq}")
    click.echo(
        f"run `clearcube run` with the run's config and --out {out_dir} to apply it", err=True
    )

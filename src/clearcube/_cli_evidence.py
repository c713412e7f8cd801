"""The command line's evidence commands: ``review`` (a person's decision on a scene of a run)
and ``bundle`` (the run as one evidence file for a verifier). Registered on the group in
:mod:`clearcube.cli`."""

from __future__ import annotations

import click

from ._cli_output import logging_options, stdout_reserved

__all__ = ["bundle_cmd", "review_cmd"]


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


@click.command("bundle")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("zip_path", metavar="OUT.zip", type=click.Path(dir_okay=False))
@logging_options
def bundle_cmd(out_dir: str, zip_path: str) -> None:
    """Zip the verified run in OUT_DIR as an evidence bundle: every file of the run, the
    installed package versions, a clause map (VM0042 / ISO 14064-2) and a manifest.
    `clearcube verify OUT.zip` checks it."""
    import zipfile

    from .products.bundle import write_bundle

    with stdout_reserved():
        path = write_bundle(out_dir, zip_path)
        with zipfile.ZipFile(path) as zf:
            members = len(zf.infolist())
    click.echo(f"bundle {path}: {members} files, {path.stat().st_size} bytes")

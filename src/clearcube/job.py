"""The main job, as the list of its stages:

search -> plan -> screen -> decide -> read -> products -> report -> audit.

Every decision goes into ``audit.jsonl`` as it is made; every product is written atomically and
recorded with its checksum, so a rerun of the same config into the same folder keeps what is
already there and verified, and a different config refuses to overwrite it. Each pixel of each
remote asset is read at most once: the QA by the screen, the reflectance of the used scenes'
clear windows by the read stage; products come from the local cube store.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ClearcubeError, ConfigError, RunFailed, scrub_href
from .layout import RunLayout
from .runconfig import RunConfig, default_config_path, load_run_config

if TYPE_CHECKING:
    import pandas as pd

    from .products.signing import SigningKey

__all__ = ["RunResult", "run"]


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    run_id
        The first 12 hex digits of the config digest (the default folder name).
    out_dir
        The run folder.
    scenes
        The scene table (``scenes.csv``).
    products
        Every product, by path relative to the run folder.
    reused
        Products a resumed run found already written and kept (``["all"]``: the whole run).
    audit_head
        Hash of the audit trail's end record.
    """

    run_id: str
    out_dir: Path
    scenes: pd.DataFrame
    products: dict[str, Path] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    audit_head: str = ""


def run(
    config: RunConfig | str | Path | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool = False,
    signing_key: str | Path | None = None,
) -> RunResult:
    """Run the main job and write its products into ``out`` (default ``out/<run-id>``).

    ``signing_key`` (default ``$CLEARCUBE_SIGNING_KEY``) is a PKCS8 PEM Ed25519 private key
    (``clearcube keys new``) that signs the audit trail's end record.

    A run that fails before it wrote any product (a search that finds nothing, no usable
    item) leaves no folder behind where there was none, and an empty one empty.

    Raises
    ------
    ConfigError
        ``out`` holds a run of a different config (pass ``overwrite=True``), or the signing
        key cannot be read.
    CatalogError
        The search failed or found nothing.
    RunFailed
        With ``fallback = "fail"``: a scene could not be judged (the products of the other
        scenes are written and recorded first).
    """
    cfg = (
        config
        if isinstance(config, RunConfig)
        else load_run_config(config or default_config_path())
    )
    root = Path(out) if out is not None else Path("out") / cfg.digest()[:12]
    existed = root.exists()
    fresh = not existed or (root.is_dir() and not any(root.iterdir()))
    from .products.signing import load_signing_key, signing_key_path

    key_path = signing_key_path(signing_key)
    signer = load_signing_key(key_path) if key_path is not None else None
    try:
        return _run(
            cfg,
            out=root,
            overwrite=overwrite,
            scheduler=scheduler,
            progress=progress,
            signer=signer,
        )
    except ClearcubeError as exc:
        if fresh and not isinstance(exc, RunFailed) and root.is_dir():
            _remove_unfinished(root, keep_folder=existed)
        raise


def _remove_unfinished(root: Path, *, keep_folder: bool) -> None:
    """Remove what a failed run wrote into a folder that was new or empty, unless a product
    was already recorded (then the folder is a run to resume)."""
    from .products.publish import recorded_products

    layout = RunLayout(root)
    if layout.audit.exists() and recorded_products(layout.audit):
        return
    if not keep_folder:
        shutil.rmtree(root, ignore_errors=True)
        return
    for child in root.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _run(
    config: RunConfig,
    *,
    out: Path,
    overwrite: bool,
    scheduler: str | None,
    progress: bool,
    signer: SigningKey | None,
) -> RunResult:
    import pandas as pd

    from .catalog import find
    from .compute import Compute, io_threads
    from .decide import decide
    from .outcome import Outcome
    from .plan import plan
    from .products.audit import AuditLog, verify_audit
    from .products.publish import Publisher, recorded_products
    from .products.writers import write_products
    from .products.zarr import CubeStore
    from .read import read
    from .screen import screen
    from .verification import verify

    cfg = config
    digest = cfg.digest()
    run_id = digest[:12]
    layout = RunLayout(out)
    _claim_folder(layout, cfg, overwrite)
    retry: list[str] = []
    if layout.audit.exists() and verify(layout.root).intact:
        previous = pd.read_csv(layout.scenes)
        retry = _unreadable(previous)
        if not retry:
            return RunResult(
                run_id,
                layout.root,
                previous,
                reused=["all"],
                audit_head=verify_audit(layout.audit).head,
            )
    recorded = recorded_products(layout.audit)
    compute = Compute(
        scheduler=scheduler, progress=progress, threads=io_threads(cfg.search.is_remote)
    )
    with AuditLog(layout.audit, reopen=bool(retry), signer=signer) as audit, compute.session():
        publisher = Publisher(layout, audit, recorded)
        if recorded or retry:
            audit.append("resumed", {"products_recorded": sorted(recorded), "retrying": retry})
        audit.append("config", {"digest": digest, "config": cfg.model_dump(mode="json")})
        audit.append("software", _versions())

        found = find(cfg.search)  # search
        audit.append("search", found.record())
        compute.announce("search", f"{len(found.items)} item(s) in {scrub_href(cfg.search.source)}")

        ld = cfg.load  # plan
        planned = plan(
            found.items,
            bbox=cfg.search.bbox,
            geometry=cfg.search.geometry,
            crs=cfg.mask.crs,
            resolution=cfg.mask.resolution,
            chunks_yx=ld.chunks_yx,
            group_by=None if ld.group_by == "none" else ld.group_by,
            check_assets=ld.check_assets,
            gdal=ld.gdal,
            digests=found.digests,
            hrefs=found.hrefs,
            allow_local_hrefs=ld.allow_local_hrefs,
        )
        for fb in planned.fallbacks:
            audit.append("fallback", {"id": fb.id, "reason": fb.reason})
        compute.announce(
            "plan",
            f"{len(planned.scenes)} scene(s) in {len(planned.slices)} slice(s), "
            f"{len(planned.fallbacks)} fallback(s)",
        )
        compute.announce("screen", f"QA of {len(planned.scenes)} scene(s)")

        store = CubeStore(layout.cube, planned.geobox)  # screen
        screened = screen(
            planned, cfg.mask, engine=ld.engine, gdal=ld.gdal, store=store, compute=compute
        )

        decisions = decide(planned, screened, cfg.mask)  # decide
        compute.announce("read", f"reflectance of {len(decisions.used)} used slice(s)")

        got = read(  # read
            planned,
            screened,
            decisions,
            ld.bands,
            store=store,
            engine=ld.engine,
            gdal=ld.gdal,
            compute=compute,
            composite=cfg.composite,
        )
        first = decisions.used  # the read stage's failures and spectra can only remove
        decisions = decide(
            planned, screened, cfg.mask, read_failures=got.failures, spectra=got.spectra
        )
        store.blank(sorted(set(first) - set(decisions.used)), ld.bands)

        outcome = Outcome(cfg, found, planned, screened, decisions, got)
        written = write_products(  # products, report, output STAC
            outcome, layout=layout, store=store, publisher=publisher, compute=compute
        )
        head = audit.close(  # audit
            {
                "catalog_sha256": _sha(layout.catalog),
                "run_json_sha256": _sha(layout.run_json),
                "run_id": run_id,
            }
        )
    result = RunResult(
        run_id, layout.root, written.scenes, dict(publisher.products), publisher.reused, head
    )
    failing = decisions.failing
    if failing:
        raise RunFailed(
            f"{len(failing)} scene(s) could not be judged and fallback = 'fail': "
            + "; ".join(d.reason for d in failing)
            + f"; the other scenes' products are in {layout.root}"
        )
    return result


def _unreadable(scenes: pd.DataFrame) -> list[str]:
    """Scenes a finished run could not read (a rerun retries them)."""
    if "fallback" not in scenes:
        return []
    return [str(i) for i in scenes.loc[scenes["fallback"] == "unreadable", "id"]]


def _claim_folder(layout: RunLayout, cfg: RunConfig, overwrite: bool) -> None:
    """Make ``layout.root`` this config's run folder: refuse (or with ``overwrite``, clear) a
    folder holding another config's run, and write ``run.json``."""
    from .products._files import atomic_path

    digest = cfg.digest()
    if layout.run_json.exists():
        previous = json.loads(layout.run_json.read_text()).get("config_digest")
        if previous != digest:
            if not overwrite:
                raise ConfigError(
                    f"{layout.root} holds a run of another config ({str(previous)[:12]}); "
                    "choose another --out or pass --overwrite"
                )
            shutil.rmtree(layout.root)
    layout.root.mkdir(parents=True, exist_ok=True)
    if not layout.run_json.exists():
        with atomic_path(layout.run_json) as tmp:
            tmp.write_text(
                json.dumps(
                    {
                        "run_id": digest[:12],
                        "config_digest": digest,
                        "config": cfg.model_dump(mode="json"),
                    },
                    indent=1,
                )
            )


def _sha(path: Path) -> str:
    from .products._files import sha256_file

    return sha256_file(path)


_VERSIONED = (
    "numpy",
    "xarray",
    "dask",
    "rasterio",
    "odc-stac",
    "odc-geo",
    "pystac",
    "pystac-client",
    "pydantic",
)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    out = {}
    for name in ("clearcube", *_VERSIONED):
        try:
            out[name] = dist_version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    import rasterio

    out["gdal"] = str(rasterio.__gdal_version__)
    return out

"""The main job, as the list of its stages:

search -> plan -> screen -> decide -> read -> products -> report -> audit.

Every decision goes into ``audit.jsonl`` as it is made; every product is written atomically and
recorded with its checksum, so a rerun of the same config into the same folder keeps what is
already there and verified, and a different config refuses to overwrite it. The inputs key
the resume too: every rerun searches again, and when an item's JSON (credentials aside) is not
the one the trail's last search recorded, or items came or went, the run is recomputed, with a
warning and an ``inputs_changed`` record naming them. Each pixel of each
remote asset is read at most once: the QA by the screen, the reflectance of the used scenes'
clear windows by the read stage; products come from the local cube store.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ClearcubeError, ConfigError, RunFailed
from .layout import RunLayout
from .runconfig import RunConfig, default_config_path, load_run_config
from .scrub import scrub_href

if TYPE_CHECKING:
    import pandas as pd

    from .catalog import Found
    from .compute import Compute
    from .decide import Decisions
    from .plan import Planned
    from .products.audit import AuditLog
    from .products.publish import Publisher
    from .products.signing import SigningKey
    from .products.writers import Written
    from .products.zarr import CubeStore
    from .read import ReadResult
    from .review import Resolution
    from .screen import Screened

__all__ = ["Job", "RunResult", "run", "started"]

log = logging.getLogger(__name__)


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
    scheduler: str | Any | None = None,
    progress: bool = False,
    signing_key: str | Path | None = None,
) -> RunResult:
    """Run the main job and write its products into ``out`` (default ``out/<run-id>``).

    ``scheduler`` is a dask.distributed scheduler address or a connected
    ``distributed.Client`` (a dask-gateway cluster's ``get_client()``) to compute on; None
    computes on threads in this process.

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
    with started(
        config,
        out=out,
        overwrite=overwrite,
        scheduler=scheduler,
        progress=progress,
        signing_key=signing_key,
    ) as job:
        if job.reused is None:
            found = job.search()
            planned = job.plan(found)
            screened = job.screen(planned)
            decisions = job.decide(planned, screened)
            got, decisions = job.read(planned, screened, decisions)
            job.products(found, planned, screened, decisions, got)
            job.audit()
    return job.result()


@contextmanager
def started(
    config: RunConfig | str | Path | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool = False,
    signing_key: str | Path | None = None,
) -> Iterator[Job]:
    """A run of the main job, started (arguments as :func:`run`): the folder claimed, the
    audit trail open and the scheduler connected while the block runs the stages, each a
    method of the :class:`Job` (``job.reused`` set: the folder holds this run finished, there
    is nothing to do). A :class:`ClearcubeError` out of the block removes what a new folder
    got, as :func:`run` says; :meth:`Job.result` after the block."""
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
        with _opened(
            cfg,
            out=root,
            overwrite=overwrite,
            scheduler=scheduler,
            progress=progress,
            signer=signer,
        ) as job:
            yield job
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


@contextmanager
def _opened(
    config: RunConfig,
    *,
    out: Path,
    overwrite: bool,
    scheduler: str | Any | None,
    progress: bool,
    signer: SigningKey | None,
) -> Iterator[Job]:

    from .catalog import find
    from .compute import Compute, io_threads
    from .products.audit import INPUTS_CHANGED, AuditLog, latest_data, verify_audit
    from .products.files import remove_stale_temps
    from .products.publish import Publisher, recorded_products
    from .products.tables import read_scenes
    from .review import has_pending, resolutions
    from .verification import verify

    cfg = config
    digest = cfg.digest()
    layout = RunLayout(out)
    _claim_folder(layout, cfg, overwrite)
    stale = remove_stale_temps(layout.root)  # what a killed run was building
    if stale:
        log.info("removed %d temporary folder(s) a stopped run left: %s", len(stale), stale)
    earlier = latest_data(layout.audit, "search")  # the inputs of the last attempt
    # the search runs before anything else: its items' digests say whether a recorded run
    # still stands (a changed input catalog recomputes it)
    found = find(cfg.search)
    changes = _input_changes(earlier, found.inputs())
    retry: list[str] = []
    resolving = False  # review resolutions recorded since the last attempt
    intact = layout.audit.exists() and verify(layout.root).intact
    if intact:
        previous = read_scenes(layout.scenes)
        retry = _unreadable(previous)
        resolving = has_pending(layout.audit)
        if not retry and not changes and not resolving:
            yield Job(
                cfg,
                layout,
                reused=RunResult(
                    digest[:12],
                    layout.root,
                    previous,
                    reused=["all"],
                    audit_head=verify_audit(layout.audit).head,
                ),
            )
            return
    if changes:
        log.warning(
            "%s: the inputs changed since the recorded run (%s); recomputing the run",
            layout.root,
            _describe(changes),
        )
    recorded = recorded_products(layout.audit)
    resolved = resolutions(layout.audit)
    compute = Compute(
        scheduler=scheduler, progress=progress, threads=io_threads(cfg.search.is_remote)
    )
    reopen = intact and bool(retry or changes or resolving)
    with AuditLog(layout.audit, reopen=reopen, signer=signer) as audit, compute.session():
        publisher = Publisher(layout, audit, recorded)
        if recorded or retry or resolving:
            audit.append(
                "resumed",
                {
                    "products_recorded": sorted(recorded),
                    "retrying": retry,
                    "review_resolutions": sorted(resolved),
                },
            )
        if changes:
            audit.append(INPUTS_CHANGED, changes)
        audit.append("config", {"digest": digest, "config": cfg.record()})
        audit.append("software", _versions())
        job = Job(
            cfg,
            layout,
            audit=audit,
            publisher=publisher,
            compute=compute,
            found=found,
            resolutions=resolved,
        )
        try:
            yield job
        finally:
            if job.store is not None and job.store.path.exists():
                job.store.discard()  # a run that stopped before its products


class Job:
    """One run of the main job between its start and its end record: the stages, one method
    each, in the order :func:`run` calls them (``clearcube.flows`` calls the same methods as
    Prefect tasks). Each stage appends its decisions to the audit trail as it makes them.

    Attributes
    ----------
    config
        The run config.
    layout
        The run folder's file names.
    reused
        The finished run the folder already holds (no stage to run), else None.
    store
        The cube store, from the screen stage on.
    resolutions
        A person's review resolutions recorded in the folder's trail (``clearcube review``),
        by scene id: the decide stage applies them.
    """

    def __init__(
        self,
        config: RunConfig,
        layout: RunLayout,
        *,
        audit: AuditLog | None = None,
        publisher: Publisher | None = None,
        compute: Compute | None = None,
        reused: RunResult | None = None,
        found: Found | None = None,
        resolutions: Mapping[str, Resolution] | None = None,
    ) -> None:
        self.resolutions = dict(resolutions or {})
        self.config = config
        self._found = found
        self.layout = layout
        self.reused = reused
        self.store: CubeStore | None = None
        self._audit = audit
        self._publisher = publisher
        self._compute = compute
        self._decisions: Decisions | None = None
        self._written: Written | None = None
        self._head = ""

    @property
    def _log(self) -> AuditLog:
        if self._audit is None:
            raise RuntimeError("this run is finished already: it has no stage to run")
        return self._audit

    @property
    def _runner(self) -> Compute:
        assert self._compute is not None
        return self._compute

    def search(self) -> Found:
        """The search stage: the items of ``[search]`` (found when the run started, to
        compare its inputs with a recorded run's), recorded in the audit trail."""
        from .catalog import find

        cfg = self.config
        found = self._found if self._found is not None else find(cfg.search)
        self._log.append("search", found.record())
        self._runner.announce(
            "search", f"{len(found.items)} item(s) in {scrub_href(cfg.search.source)}"
        )
        return found

    def plan(self, found: Found) -> Planned:
        """The plan stage: every item parsed once, the grid, the slices, the fallbacks."""
        from .plan import plan

        cfg = self.config
        ld = cfg.load
        planned = plan(
            found.items,
            bbox=cfg.search.bbox,
            geometry=cfg.search.geometry,
            crs=cfg.mask.crs,
            resolution=cfg.mask.resolution,
            chunks_yx=ld.chunks_yx,
            group_by=None if ld.group_by == "none" else ld.group_by,
            check_assets=ld.check_assets,
            gdal=read_options(cfg),
            digests=found.digests,
            hrefs=found.hrefs,
            allow_local_hrefs=ld.allow_local_hrefs,
        )
        for fb in planned.fallbacks:
            self._log.append("fallback", {"id": fb.id, "reason": fb.reason})
        self._runner.announce(
            "plan",
            f"{len(planned.scenes)} scene(s) in {len(planned.slices)} slice(s), "
            f"{len(planned.fallbacks)} fallback(s)",
        )
        return planned

    def screen(self, planned: Planned) -> Screened:
        """The screen stage: every scene's QA read once, ``flags`` and ``clear`` written into
        a new cube store (a store of an earlier attempt is discarded)."""
        from .products.zarr import CubeStore
        from .screen import screen

        ld = self.config.load
        self._runner.announce("screen", f"QA of {len(planned.scenes)} scene(s)")
        if self.store is not None:
            self.store.discard()
        self.store = CubeStore(self.layout.cube, planned.geobox)
        return screen(
            planned,
            self.config.mask,
            engine=ld.engine,
            gdal=read_options(self.config),
            store=self.store,
            compute=self._runner,
        )

    def decide(self, planned: Planned, screened: Screened) -> Decisions:
        """The decide stage: used, excluded, review and fallback scenes, with reasons."""
        from .decide import decide

        return decide(planned, screened, self.config.mask, resolutions=self.resolutions)

    def read(
        self, planned: Planned, screened: Screened, decisions: Decisions
    ) -> tuple[ReadResult, Decisions]:
        """The read stage: the used scenes' reflectance into the cube store, the science
        checks and the composite; then the decisions again (a read can only remove a scene
        from use: its bands are blanked in the store)."""
        from .decide import decide
        from .read import read

        assert self.store is not None, "the screen stage creates the cube store"
        ld = self.config.load
        self._runner.announce("read", f"reflectance of {len(decisions.used)} used slice(s)")
        got = read(
            planned,
            screened,
            decisions,
            ld.bands,
            store=self.store,
            engine=ld.engine,
            gdal=read_options(self.config),
            compute=self._runner,
            composite=self.config.composite,
        )
        first = decisions.used
        after = decide(
            planned,
            screened,
            self.config.mask,
            read_failures=got.failures,
            spectra=got.spectra,
            resolutions=self.resolutions,
        )
        self.store.blank(sorted(set(first) - set(after.used)), ld.bands)
        return got, after

    def products(
        self,
        found: Found,
        planned: Planned,
        screened: Screened,
        decisions: Decisions,
        got: ReadResult,
    ) -> Written:
        """The products stage: the scene table, the cube moved into place, the composites,
        the report and the output STAC, each published atomically and recorded."""
        from .outcome import Outcome
        from .products.writers import write_products

        assert self.store is not None, "the screen stage creates the cube store"
        assert self._publisher is not None
        outcome = Outcome(self.config, found, planned, screened, decisions, got)
        self._written = write_products(
            outcome,
            layout=self.layout,
            store=self.store,
            publisher=self._publisher,
            compute=self._runner,
        )
        self._decisions = decisions
        return self._written

    def audit(self) -> str:
        """The audit stage: the end record (signed with a key), its hash."""
        layout = self.layout
        self._head = self._log.close(
            {
                "catalog_sha256": _sha(layout.catalog),
                "run_json_sha256": _sha(layout.run_json),
                "run_id": self.config.digest()[:12],
            }
        )
        return self._head

    def result(self) -> RunResult:
        """What the run produced, once its block is over.

        Raises
        ------
        RunFailed
            With ``fallback = "fail"``: a scene could not be judged."""
        if self.reused is not None:
            return self.reused
        if self._written is None or self._decisions is None or not self._head:
            raise RuntimeError("the run has not written its products and end record")
        assert self._publisher is not None
        layout = self.layout
        result = RunResult(
            self.config.digest()[:12],
            layout.root,
            self._written.scenes,
            dict(self._publisher.products),
            self._publisher.reused,
            self._head,
        )
        failing = self._decisions.failing
        if failing:
            raise RunFailed(
                f"{len(failing)} scene(s) could not be judged and fallback = 'fail': "
                + "; ".join(d.reason for d in failing)
                + f"; the other scenes' products are in {layout.root}"
            )
        return result


def read_options(cfg: RunConfig) -> dict[str, str]:
    """The GDAL options of the run's reads: its source provider's signing (a Planetary
    Computer run signs each read with a fresh SAS token, :mod:`clearcube.sas`), then
    ``[load] gdal`` (which may name another token endpoint)."""
    from .catalog import PROVIDERS
    from .sas import signing_options

    provider = PROVIDERS.get(cfg.search.source)
    return {**signing_options(provider.signing if provider else None), **cfg.load.gdal}


def _input_changes(
    earlier: dict[str, Any] | None, now: dict[str, str]
) -> dict[str, list[str]] | None:
    """What changed between the inputs an earlier attempt's search recorded and ``now``
    (``collection/id`` -> digest, :meth:`clearcube.catalog.Found.inputs`): changed, new and
    gone items. ``None``: nothing changed, or the trail recorded no inputs to compare."""
    before = earlier.get("inputs") if earlier is not None else None
    if not isinstance(before, dict):
        return None
    out = {
        "changed": sorted(k for k in now if k in before and before[k] != now[k]),
        "added": sorted(k for k in now if k not in before),
        "removed": sorted(k for k in before if k not in now),
    }
    return out if any(out.values()) else None


def _describe(changes: dict[str, list[str]]) -> str:
    parts = []
    for what, keys in changes.items():
        if keys:
            names = ", ".join(k.rsplit("/", 1)[-1] for k in keys[:3])
            parts.append(f"{len(keys)} {what}: {names}{', ...' if len(keys) > 3 else ''}")
    return "; ".join(parts)


def _unreadable(scenes: pd.DataFrame) -> list[str]:
    """Scenes a finished run could not read (a rerun retries them)."""
    if "fallback" not in scenes:
        return []
    return [str(i) for i in scenes.loc[scenes["fallback"] == "unreadable", "id"]]


def _claim_folder(layout: RunLayout, cfg: RunConfig, overwrite: bool) -> None:
    """Make ``layout.root`` this config's run folder: refuse (or with ``overwrite``, clear) a
    folder holding another config's run, and write ``run.json``."""
    from .products.files import atomic_path

    digest = cfg.digest()
    if layout.run_json.exists():
        previous = json.loads(layout.run_json.read_text()).get("config_digest")
        if previous != digest:
            if not overwrite:
                raise ConfigError(
                    f"{layout.root} holds a run of another config ({str(previous)[:12]}); "
                    "choose another --out or pass --overwrite"
                )
            log.warning(
                "%s: replacing the run of another config (%s) with config %s",
                layout.root,
                str(previous)[:12],
                digest[:12],
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
                        "config": cfg.record(),
                    },
                    indent=1,
                )
            )


def _sha(path: Path) -> str:
    from .products.files import sha256_file

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

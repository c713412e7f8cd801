"""The main job: search -> load -> decode -> dilate -> cloud fractions -> route -> masked cube
-> composites -> output STAC, audit trail, review queue (and report).

Every decision goes into ``audit.jsonl`` as it is made; every product is written atomically and
recorded with its checksum, so a rerun of the same config into the same folder skips what is
already there and verified, and a different config refuses to overwrite it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import CatalogError, ConfigError
from .products._files import atomic_path, multihash_sha256, sha256_file
from .products.audit import AuditLog, verify_audit
from .runconfig import RunConfig, load_run_config

__all__ = ["RunResult", "VerifyResult", "run", "verify"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.toml"
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


@dataclass
class RunResult:
    """What a run produced."""

    run_id: str
    out_dir: Path
    scenes: pd.DataFrame
    products: dict[str, Path] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)
    audit_head: str = ""


@dataclass
class VerifyResult:
    ok: bool
    problems: list[str]
    checked: int


def _versions() -> dict[str, str]:
    out = {}
    for name in ("clearcube", *_VERSIONED):
        try:
            out[name] = dist_version(name)
        except Exception:
            out[name] = "unknown"
    try:
        import rasterio

        out["gdal"] = str(rasterio.__gdal_version__)
    except ImportError:  # pragma: no cover
        pass
    return out


def _recorded_products(audit_path: Path) -> dict[str, str]:
    """Products already recorded in an (unfinished) trail: relative path -> sha256."""
    out: dict[str, str] = {}
    if not audit_path.exists():
        return out
    for line in audit_path.read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "product":
            out[record["data"]["path"]] = record["data"]["sha256"]
    return out


@contextlib.contextmanager
def _scheduler(address: str | None, progress: bool) -> Iterator[None]:
    if address:
        from distributed import Client

        with Client(address):
            yield
    elif progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            yield
    else:
        yield


def run(
    config: RunConfig | str | Path | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool = False,
) -> RunResult:
    """Run the main job and write its products into ``out`` (default ``out/<run-id>``).

    Raises
    ------
    ConfigError
        ``out`` holds a run of a different config (pass ``overwrite=True``).
    CatalogError
        The search found nothing.
    """
    from . import __version__
    from .catalog import search
    from .composite import composite
    from .cube import fallbacks_of, load
    from .products.cog import write_cog
    from .products.stac import write_catalog
    from .products.zarr import write_cube
    from .route import route
    from .stats import cloud_fraction

    if config is None:
        config = DEFAULT_CONFIG
    cfg = config if isinstance(config, RunConfig) else load_run_config(config)
    digest = cfg.digest()
    run_id = digest[:12]
    out_dir = Path(out) if out is not None else Path("out") / run_id
    marker = out_dir / "run.json"
    if marker.exists():
        previous = json.loads(marker.read_text()).get("config_digest")
        if previous != digest:
            if not overwrite:
                raise ConfigError(
                    f"{out_dir} holds a run of another config ({previous[:12]}); choose another "
                    "--out or pass --overwrite"
                )
            shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        with atomic_path(marker) as tmp:
            tmp.write_text(
                json.dumps(
                    {
                        "run_id": run_id,
                        "config_digest": digest,
                        "config": cfg.model_dump(mode="json"),
                    },
                    indent=1,
                )
            )

    audit_path = out_dir / "audit.jsonl"
    if audit_path.exists() and verify(out_dir).ok:
        scenes = pd.read_csv(out_dir / "scenes.csv")
        return RunResult(
            run_id, out_dir, scenes, reused=["all"], audit_head=verify_audit(audit_path).head
        )
    recorded = _recorded_products(audit_path)
    result = RunResult(run_id, out_dir, pd.DataFrame())

    with AuditLog(audit_path) as audit:
        if recorded:
            audit.append("resumed", {"products_recorded": sorted(recorded)})
        audit.append("config", {"digest": digest, "config": cfg.model_dump(mode="json")})
        audit.append("software", _versions())

        s = cfg.search
        items = search(
            bbox=s.bbox,
            datetime=s.datetime,
            collections=s.collections,
            source=s.source,
            max_cloud=s.max_cloud,
            limit=s.limit,
        )
        audit.append(
            "search",
            {
                "source": s.source,
                "bbox": s.bbox,
                "datetime": s.datetime,
                "items": len(items),
                "ids": [i.id for i in items],
            },
        )
        if not items:
            raise CatalogError(
                f"the search of {s.source} found no items; widen the bbox, dates or max_cloud"
            )
        ld = cfg.load
        ds = load(
            items,
            bbox=s.bbox,
            bands=ld.bands,
            config=cfg.mask,
            engine=ld.engine,
            chunks=ld.chunks,
            group_by=None if ld.group_by == "none" else ld.group_by,
            check_assets=ld.check_assets,
        )
        for fb in fallbacks_of(ds):
            audit.append("fallback", fb)

        with _scheduler(scheduler, progress):
            table = cloud_fraction(ds, cfg.mask)
        routed = route(table, fallbacks_of(ds), cfg.mask)
        for row in routed.to_dict("records"):
            kind = {
                "used": "scene_used",
                "review": "scene_review",
                "fallback": "scene_fallback",
            }.get(row["decision"], "scene_excluded")
            audit.append(kind, {k: _plain(v) for k, v in row.items()})
        result.scenes = routed

        def product(rel: str, writer: Any) -> Path:
            path = out_dir / rel
            if rel in recorded and path.exists() and sha256_file(path) == recorded[rel]:
                result.reused.append(rel)
            else:
                writer(path)
                audit.append("product", {"path": rel, "sha256": sha256_file(path)})
            result.products[rel] = path
            return path

        def write_scenes(path: Path) -> None:
            with atomic_path(path) as tmp:
                routed.to_csv(tmp, index=False)

        product("scenes.csv", write_scenes)

        def write_review(path: Path) -> None:
            # a person looks at: doubtful masks (review) and scenes excluded for cloud
            queue = routed["decision"].isin(["review", "over_threshold"])
            rows = routed[queue].to_dict("records")
            with atomic_path(path) as tmp:
                tmp.write_text(
                    "".join(json.dumps({k: _plain(v) for k, v in r.items()}) + "\n" for r in rows)
                )

        product("review.jsonl", write_review)

        decision_by_id = dict(zip(routed["id"], routed["decision"], strict=False))
        decisions = [decision_by_id.get(str(i), "used") for i in ds["id"].values]
        cube = ds.assign_coords(decision=("time", decisions))

        def write_zarr(path: Path) -> None:
            with _scheduler(scheduler, progress):
                write_cube(cube, path)

        product("cube.zarr", write_zarr)

        used = cube.isel(time=[i for i, d in enumerate(decisions) if d == "used"])
        composites: dict[str, dict[str, Any]] = {}
        if used.sizes["time"] and ld.bands:
            comp = composite(
                used, period=cfg.composite.period, method=cfg.composite.method, bands=ld.bands
            )
            with _scheduler(scheduler, progress):
                comp = comp.compute()
            for label in comp["period"].values:
                one = comp.sel(period=label)
                rel_b = f"composites/{cfg.composite.method}_{label}.tif"
                rel_c = f"composites/clear_count_{label}.tif"
                product(
                    rel_b,
                    lambda p, one=one: write_cog(
                        [one[b] for b in ld.bands],
                        p,
                        nodata=float("nan"),
                        descriptions=list(ld.bands),
                    ),
                )
                product(
                    rel_c,
                    lambda p, one=one: write_cog(
                        [one["clear_count"]], p, descriptions=["clear_count"]
                    ),
                )
                composites[f"composite-{label}"] = {
                    "assets": {
                        "reflectance": {
                            "href": rel_b,
                            "type": _COG,
                            "roles": ["data"],
                            "checksum": multihash_sha256(out_dir / rel_b),
                            "title": f"{cfg.composite.method} of clear {', '.join(ld.bands)}",
                        },
                        "clear_count": {
                            "href": rel_c,
                            "type": _COG,
                            "roles": ["data"],
                            "checksum": multihash_sha256(out_dir / rel_c),
                            "title": "clear observations per pixel",
                        },
                    },
                    "properties": {
                        "clearcube:period": str(label),
                        "clearcube:scenes": int(used.sizes["time"]),
                    },
                }

        from .products.report import write_report

        product(
            "report.html",
            lambda p: write_report(p, routed, cube, cfg, composites_dir=out_dir / "composites"),
        )

        times = pd.DatetimeIndex(ds["time"].values)
        products = {
            "masked-cube": {
                "assets": {
                    "cube": {
                        "href": "cube.zarr",
                        "type": "application/vnd+zarr",
                        "roles": ["data"],
                        "checksum": multihash_sha256(out_dir / "cube.zarr"),
                    },
                    "scenes": {
                        "href": "scenes.csv",
                        "type": "text/csv",
                        "roles": ["metadata"],
                        "checksum": multihash_sha256(out_dir / "scenes.csv"),
                    },
                    "report": {
                        "href": "report.html",
                        "type": "text/html",
                        "roles": ["overview"],
                        "checksum": multihash_sha256(out_dir / "report.html"),
                    },
                },
                "properties": {"clearcube:scenes": int(ds.sizes["time"])},
            },
            **composites,
        }
        bbox = s.bbox or tuple(ds.odc.geobox.geographic_extent.boundingbox)
        catalog = write_catalog(
            out_dir,
            run_id=run_id,
            bbox=bbox,
            interval=(times.min().isoformat() + "Z", times.max().isoformat() + "Z"),
            crs=f"EPSG:{ds.odc.geobox.crs.epsg}",
            products=products,
            sources=[str(i.get_self_href() or i.id) for i in items],
            processing={
                "software": {"clearcube": __version__},
                "lineage": "clearcube run: search, QA decoding to sensor-neutral flags, dilation, "
                "cloud fractions over valid pixels, routing, composites",
                "config_digest": digest,
            },
        )
        for path in sorted((out_dir / "stac").glob("*.json")):
            audit.append(
                "product",
                {"path": path.relative_to(out_dir).as_posix(), "sha256": sha256_file(path)},
            )
        result.audit_head = audit.close({"catalog_sha256": sha256_file(catalog), "run_id": run_id})
    return result


_COG = "image/tiff; application=geotiff; profile=cloud-optimized"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN -> null
    if hasattr(value, "item"):
        return _plain(value.item())
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def verify(out_dir: str | Path) -> VerifyResult:
    """Re-check the audit chain, every recorded product's checksum and the catalog."""
    out_dir = Path(out_dir)
    audit_path = out_dir / "audit.jsonl"
    problems: list[str] = []
    chain = verify_audit(audit_path)
    if not chain.ok:
        return VerifyResult(False, [f"audit.jsonl: {chain.error}"], 0)
    checked = 0
    catalog_sha = None
    for line in audit_path.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "product":
            rel, want = record["data"]["path"], record["data"]["sha256"]
            path = out_dir / rel
            checked += 1
            if not path.exists():
                problems.append(f"{rel}: missing (record seq {record['seq']})")
            elif sha256_file(path) != want:
                problems.append(
                    f"{rel}: checksum differs from audit record seq "
                    f"{record['seq']} (the product was altered)"
                )
        if record["kind"] == "end":
            catalog_sha = record["data"].get("catalog_sha256")
    catalog = out_dir / "catalog.json"
    if catalog_sha is not None:
        checked += 1
        if not catalog.exists() or sha256_file(catalog) != catalog_sha:
            problems.append("catalog.json: checksum differs from the end record")
    return VerifyResult(not problems, problems, checked)

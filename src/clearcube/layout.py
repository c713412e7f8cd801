"""The run folder: the one place that names every file a run writes.

``run``, ``verify``, the resume logic, the report and the output STAC all find files through
:class:`RunLayout`, so a file name is written down once. Paths relative to the run folder (as
recorded in the audit trail and linked from the STAC items) come from :meth:`RunLayout.rel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout"]


@dataclass(frozen=True)
class RunLayout:
    """Every file of one run folder.

    Attributes
    ----------
    root
        The run folder (``out/<run-id>`` by default).
    """

    root: Path

    # the run's own records
    @property
    def run_json(self) -> Path:
        """The run's identity: id, config and its digest, digest of the inputs."""
        return self.root / "run.json"

    @property
    def audit(self) -> Path:
        """The hash-chained audit trail."""
        return self.root / "audit.jsonl"

    # products
    @property
    def scenes(self) -> Path:
        """One row per scene: counts, fractions, decision and reason."""
        return self.root / "scenes.csv"

    @property
    def review(self) -> Path:
        """Scenes queued for a person to look at (JSON lines)."""
        return self.root / "review.jsonl"

    @property
    def report(self) -> Path:
        """The self-contained HTML report."""
        return self.root / "report.html"

    @property
    def cube(self) -> Path:
        """The masked datacube (Zarr)."""
        return self.root / "cube.zarr"

    @property
    def composites(self) -> Path:
        """The folder of composite COGs."""
        return self.root / "composites"

    def composite(self, method: str, label: str) -> Path:
        """The reflectance composite of one period (``median_2024.tif``)."""
        return self.composites / f"{method}_{label}.tif"

    def clear_count(self, label: str) -> Path:
        """The clear-observation count of one period (``clear_count_2024.tif``)."""
        return self.composites / f"clear_count_{label}.tif"

    def clear_dates(self, label: str) -> Path:
        """The dates of each pixel's first and last clear observation in one period (days
        since 1970-01-01; ``clear_dates_2024.tif``)."""
        return self.composites / f"clear_dates_{label}.tif"

    def source_index(self, label: str) -> Path:
        """The medoid's source scene per pixel in one period (``source_index_2024.tif``): an
        index into :attr:`source_table`."""
        return self.composites / f"source_index_{label}.tif"

    @property
    def source_table(self) -> Path:
        """The lookup table of the composites' source indices: index -> scene id, date,
        sensor (``composites/source_scenes.json``)."""
        return self.composites / "source_scenes.json"

    @property
    def catalog(self) -> Path:
        """The root of the output STAC catalog."""
        return self.root / "catalog.json"

    @property
    def stac(self) -> Path:
        """The folder of the output STAC items."""
        return self.root / "stac"

    def stac_item(self, item_id: str) -> Path:
        """One output STAC item."""
        return self.stac / f"{item_id}.json"

    @property
    def source_items(self) -> Path:
        """The folder of the source items' JSON as the run read them (the targets of the
        output STAC's ``derived_from`` links), so the run folder is self-contained."""
        return self.root / "source-items"

    def source_item(self, name: str) -> Path:
        """One source item's snapshot (``source-items/<name>.json``)."""
        return self.source_items / f"{name}.json"

    # an evidence bundle (``clearcube bundle``) holds the run's files and these
    @property
    def bundle(self) -> Path:
        """The bundle's own files (in an extracted evidence bundle only)."""
        return self.root / "bundle"

    @property
    def bundle_manifest(self) -> Path:
        """The bundle's manifest: the run's audit head and the checksum of each bundle file."""
        return self.bundle / "manifest.json"

    @property
    def bundle_versions(self) -> Path:
        """Every installed package's version where the bundle was made."""
        return self.bundle / "versions.json"

    @property
    def bundle_clauses(self) -> Path:
        """Which artefact answers which VM0042 / ISO 14064-2 data-quality requirement."""
        return self.bundle / "clause-map.md"

    def rel(self, path: Path) -> str:
        """``path`` relative to the run folder, with forward slashes (as recorded)."""
        return path.relative_to(self.root).as_posix()

    def path(self, rel: str) -> Path:
        """The file a recorded relative path names."""
        return self.root / rel

    def is_run(self) -> bool:
        """Whether the folder holds a run (its ``run.json`` and audit trail)."""
        return self.run_json.is_file() and self.audit.is_file()

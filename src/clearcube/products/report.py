"""``report.html``: what a verifier reads first. One self-contained page with PNG plots
(cloud fraction over time per sensor with the threshold, the histogram of per-scene cloud
fractions, quicklooks of the composite and of the clear-observation count) and the table of
routed scenes."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ._files import atomic_path

if TYPE_CHECKING:
    from ..outcome import Outcome
    from .writers import Written

__all__ = ["write_report"]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _timeseries(scenes: pd.DataFrame, threshold: float) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    rows = scenes.dropna(subset=["cloud_fraction"])
    for sensor, part in rows.groupby("sensor"):
        ax.plot(pd.to_datetime(part["time"]), 100 * part["cloud_fraction"], "o-", label=sensor)
    ax.axhline(100 * threshold, color="red", linestyle="--", label="threshold")
    ax.set_ylabel("cloud fraction (% of valid pixels)")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def _histogram(scenes: pd.DataFrame, threshold: float) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    values = 100 * scenes["cloud_fraction"].dropna()
    ax.hist(values, bins=[5.0 * k for k in range(21)], color="#4477aa")
    ax.axvline(100 * threshold, color="red", linestyle="--")
    ax.set_xlabel("cloud fraction (%)")
    ax.set_ylabel("scenes")
    return _png(fig)


#: The longest side of a quicklook read from a composite, in pixels.
QUICKLOOK_PX = 600


def _quicklooks(tifs: list[Path]) -> list[tuple[str, str]]:
    import matplotlib.pyplot as plt
    import rasterio

    out = []
    for tif in tifs:
        with rasterio.open(tif) as src:
            # a quicklook needs no more than its figure shows: read through the overviews
            factor = max(1, max(src.height, src.width) // QUICKLOOK_PX)
            shape = (src.count, max(1, src.height // factor), max(1, src.width // factor))
            data = src.read(out_shape=shape, masked=True).astype(float)
            names = list(src.descriptions)
        fig, ax = plt.subplots(figsize=(4, 3.2))
        if names[:2] == ["red", "nir"]:
            red, nir = data[0], data[1]
            ndvi = (nir - red) / (nir + red)
            im = ax.imshow(ndvi, vmin=-0.2, vmax=0.9, cmap="RdYlGn")
            ax.set_title(f"NDVI of {tif.stem}", fontsize=9)
        else:
            im = ax.imshow(data[0], cmap="viridis")
            ax.set_title(tif.stem, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_axis_off()
        out.append((tif.name, _png(fig)))
    return out


def write_report(path: Path, outcome: Outcome, written: Written, cube: xr.Dataset) -> Path:
    """Write ``report.html`` for a run's stage outputs and products."""
    import matplotlib

    matplotlib.use("Agg")
    config = outcome.config
    scenes = written.scenes
    threshold = config.mask.cloud_threshold
    loaded = scenes[scenes["decision"] != "fallback"]
    images = [
        ("Cloud fraction over time", _timeseries(loaded, threshold)),
        ("Per-scene cloud fractions", _histogram(loaded, threshold)),
    ]
    if written.composites:
        latest = max(written.composites, key=lambda c: c.label)
        images += _quicklooks([latest.reflectance, latest.clear_count])
    counts = scenes["decision"].value_counts().to_dict()
    columns = [
        c
        for c in (
            "id",
            "time",
            "sensor",
            "platform",
            "valid_px",
            "cloud_fraction",
            "provider_cloud_cover",
            "decision",
            "reason",
        )
        if c in scenes
    ]
    rows = []
    for rec in scenes[columns].to_dict("records"):
        cells = []
        for c in columns:
            v = rec[c]
            if isinstance(v, float):
                v = "" if np.isnan(v) else f"{v:.4f}" if c == "cloud_fraction" else f"{v:.2f}"
            cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append(f"<tr class='{html.escape(str(rec['decision']))}'>{''.join(cells)}</tr>")
    figures = "\n".join(
        f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'>"
        f"<figcaption>{html.escape(t)}</figcaption></figure>"
        for t, b in images
    )
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    masked = ", ".join(config.mask.masked_flags)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clearcube run report</title>
<style>body{{font-family:sans-serif;margin:2em}}figure{{display:inline-block;margin:0.5em}}
table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:2px 6px}}
tr.used{{background:#e8f5e9}}tr.over_threshold{{background:#ffebee}}
tr.review{{background:#fff8e1}}tr.fallback{{background:#eceff1}}</style></head>
<body><h1>clearcube run report</h1>
<p>{len(scenes)} scenes: {html.escape(summary)}. Threshold {threshold:.0%} of valid pixels;
masked flags {html.escape(masked)}; engine {html.escape(config.load.engine)};
grid EPSG:{cube.odc.geobox.crs.epsg} at {abs(cube.odc.geobox.resolution.x):g} m.</p>
{figures}
<h2>Routed scenes</h2>
<table><tr>{"".join(f"<th>{html.escape(c)}</th>" for c in columns)}</tr>
{"".join(rows)}</table>
<p>Every decision above is in audit.jsonl; <code>clearcube verify</code> re-checks it.</p>
</body></html>
"""
    with atomic_path(path) as tmp:
        tmp.write_text(page)
    return path

"""``report.html``: what a verifier reads first. One self-contained page (PNG plots inline, no
web tiles, no scripts, nothing fetched) with, in order:

- a map of the area of interest and the scene footprints (lon/lat), the whole footprints and
  a close-up of the area;
- the cloud fraction over time, one line per series (tile or path/row, and sensor), with the
  threshold, on concise date axes;
- per-series histograms of the per-scene cloud fractions;
- the science checks: per scene the median NDVI (and EVI, with blue) of the pixels the mask
  kept and of those it removed, the pooled NDVI histograms of both, and a table of the
  plausibility and haze figures with each scene's verdict;
- quicklooks of every composite (NDVI and clear-observation count);
- the table of routed scenes.

Each panel is a ``<section>`` with an ``id`` (``map``, ``series``, ``histograms``,
``checks``, ``composites``, ``scenes``). The figures are drawn with matplotlib's object API
(no pyplot state): the report is on the run's critical path.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .files import atomic_path

if TYPE_CHECKING:
    from ..checks import Spectra
    from ..outcome import Outcome
    from ..plan import Planned
    from .composites import CompositeProduct
    from .writers import Written

__all__ = ["PANELS", "write_report"]

#: The report's panels, as ``<section id>``: title.
PANELS = {
    "map": "Area of interest and scene footprints",
    "series": "Cloud fraction over time",
    "histograms": "Cloud fractions per series",
    "checks": "Science checks on the reflectance",
    "composites": "Composites",
    "scenes": "Routed scenes",
}

#: The longest side of a quicklook read from a composite, in pixels.
QUICKLOOK_PX = 600

_DECISION_MARKERS = {
    "used": "o",
    "review": "D",
    "over_threshold": "x",
    "no_valid_data": ".",
}


def _figure(width: float, height: float, **margins: float) -> Any:
    """A figure outside pyplot, its margins set by hand (``subplots_adjust`` arguments)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(**{"left": 0.08, "right": 0.98, "bottom": 0.14, "top": 0.9, **margins})
    return fig


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    # the figures are laid out by hand (subplots_adjust / tight_layout): bbox_inches="tight"
    # would draw every figure twice
    fig.savefig(
        buf, format="png", dpi=90, metadata={"Software": None}, pil_kwargs={"compress_level": 3}
    )
    return base64.b64encode(buf.getvalue()).decode()


def _series_label(sensor: Any, tile: Any) -> str:
    tile = "" if tile is None or (isinstance(tile, float) and np.isnan(tile)) else str(tile)
    return f"{sensor} {tile}".strip()


def _with_series(scenes: pd.DataFrame) -> pd.DataFrame:
    """The slice rows with a ``series`` label (sensor and tile or path/row) and their time."""
    rows = scenes[scenes["time"].notna()].copy()
    tiles = rows["tile"] if "tile" in rows else pd.Series("", index=rows.index)
    rows["series"] = [_series_label(s, t) for s, t in zip(rows["sensor"], tiles, strict=True)]
    rows["when"] = pd.to_datetime(rows["time"])
    return rows.sort_values("when", kind="stable")


def _colours(labels: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {label: cmap(k % 10) for k, label in enumerate(labels)}


def _date_axis(ax: Any) -> None:
    """Concise date ticks: years once, months between, no overlapping labels."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _rings(geom: Any) -> list[Any]:
    """The exterior rings of a (multi)polygon, as ``(n, 2)`` lon/lat arrays."""
    return [
        np.asarray(part.exterior.coords)
        for part in getattr(geom, "geoms", [geom])
        if hasattr(part, "exterior")
    ]


def _map(planned: Planned, scenes: pd.DataFrame, colours: dict[str, Any]) -> tuple[str, str] | None:
    """The footprints of every scene, coloured by series, and the area of interest, in lon/lat:
    the whole footprints on the left, a close-up of the area on the right; with its caption."""
    from ..aoi import aoi_polygon, footprint_polygon

    aoi = aoi_polygon(planned.bbox, planned.geometry)
    label_of = dict(zip(scenes["id"], scenes["series"], strict=True))
    shapes = []
    for sl in planned.slices:
        for m in sl.members:
            shape = footprint_polygon(m.footprint, m.bbox)
            if shape is not None:
                shapes.append((label_of.get(sl.id, _series_label(sl.sensor, sl.first.tile)), shape))
    if aoi is None and not shapes:
        return None
    fig = _figure(9, 4, wspace=0.25)
    overview, close = fig.subplots(1, 2)
    everything = [s for _, s in shapes] + ([aoi] if aoi is not None else [])
    from shapely import union_all

    whole = union_all(everything).bounds
    lat = 0.5 * (whole[1] + whole[3])
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.lines import Line2D

    by_series: dict[str, list[Any]] = {}
    for label, shape in shapes:  # one collection per series: one artist, not one per scene
        by_series.setdefault(label, []).extend(_rings(shape))
    aoi_rings = [] if aoi is None else _rings(aoi)
    for ax in (overview, close):
        for label, rings in by_series.items():
            colour = colours.get(label, "grey")
            ax.add_collection(LineCollection(rings, colors=[colour], linewidths=1.0, alpha=0.8))
        if aoi_rings:
            ax.add_collection(
                PolyCollection(aoi_rings, facecolors="#ff000059", edgecolors="red", linewidths=1.2)
            )
        ax.autoscale_view()
        ax.set_aspect(1 / max(np.cos(np.radians(lat)), 0.05))
        ax.set_xlabel("longitude (°)")
        ax.grid(alpha=0.3)
    overview.set_ylabel("latitude (°)")
    overview.set_title(f"{len(shapes)} footprints", fontsize=9)
    handles = [Line2D([], [], color=colours.get(label, "grey")) for label in by_series]
    names = list(by_series)
    if aoi_rings:
        handles.append(Line2D([], [], color="red", linewidth=6, alpha=0.35))
        names.append("area of interest")
    close.legend(handles, names, fontsize=7, loc="upper right")
    if aoi is not None:
        w, s, e, n = aoi.bounds
        pad = max(e - w, n - s) * 1.5
        close.set_xlim(w - pad, e + pad)
        close.set_ylim(s - pad, n + pad)
        close.set_title(f"area of interest {e - w:.3f}° x {n - s:.3f}°", fontsize=9)
    else:
        close.set_visible(False)
    where = "" if aoi is None else " around the area of interest {:.4f} {:.4f} {:.4f} {:.4f}"
    n_series = len({label for label, _ in shapes})
    caption = f"{len(shapes)} footprints of {n_series} series" + where.format(
        *(aoi.bounds if aoi is not None else ())
    )
    return _png(fig), caption + " (lon/lat, degrees)"


def _timeseries(rows: pd.DataFrame, threshold: float, colours: dict[str, Any]) -> str:
    fig = _figure(8, 3.2, top=0.97)
    ax = fig.subplots()
    judged = rows.dropna(subset=["cloud_fraction"])
    for label, part in judged.groupby("series", sort=False):
        colour = colours[str(label)]
        ax.plot(part["when"], 100 * part["cloud_fraction"], "-", color=colour, label=label)
        for decision, marker in _DECISION_MARKERS.items():
            pts = part[part["decision"] == decision]
            if len(pts):
                ax.plot(pts["when"], 100 * pts["cloud_fraction"], marker, color=colour, ms=5)
    ax.axhline(100 * threshold, color="red", linestyle="--", label="threshold")
    ax.set_ylabel("cloud fraction (% of valid pixels)")
    ax.set_ylim(0, 100)
    _date_axis(ax)
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _png(fig)


def _histograms(rows: pd.DataFrame, threshold: float, colours: dict[str, Any]) -> str:
    """The histogram of per-scene cloud fractions in 5 % bins, stacked by series: each
    series' own histogram is its band of colour (one artist per series)."""
    judged = rows.dropna(subset=["cloud_fraction"])
    labels = list(dict.fromkeys(judged["series"]))
    fig = _figure(8, 3.0, top=0.97, bottom=0.17)
    ax = fig.subplots()
    edges = np.linspace(0.0, 100.0, 21)
    base = np.zeros(len(edges) - 1)
    for label in labels:
        values = 100 * judged.loc[judged["series"] == label, "cloud_fraction"].to_numpy()
        counts, _ = np.histogram(values, bins=edges)
        ax.stairs(
            base + counts, edges, baseline=base.copy(), fill=True,
            color=colours.get(label, "#4477aa"), label=f"{label} ({len(values)} scenes)",
        )  # fmt: skip
        base = base + counts
    ax.axvline(100 * threshold, color="red", linestyle="--", label="threshold")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, max(1.0, float(base.max()) * 1.15))
    ax.set_xlabel("cloud fraction (% of valid pixels, 5 % bins)")
    ax.set_ylabel("scenes (stacked by series)")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def _checks_figure(
    rows: pd.DataFrame, spectra: dict[str, Spectra], colours: dict[str, Any]
) -> str | None:
    """Per scene, the median NDVI (and EVI) of kept and masked pixels over time; the pooled
    NDVI histograms of kept and masked pixels."""
    from ..checks import NDVI_EDGES

    read = rows[rows["id"].isin(list(spectra))]
    if read.empty:
        return None
    has_evi = "evi_kept_median" in read and read["evi_kept_median"].notna().any()
    rows_n = 2 if has_evi else 1
    fig = _figure(
        9, 3.2 * rows_n, bottom=0.16 / rows_n, top=1 - 0.05 / rows_n, wspace=0.25, hspace=0.35
    )
    axes = np.atleast_2d(fig.subplots(rows_n, 2, squeeze=False))
    indices = [("NDVI", "ndvi", axes[0])] + ([("EVI", "evi", axes[1])] if has_evi else [])
    from matplotlib.lines import Line2D

    styles = [  # the series' colours are those of the other panels: two legend entries
        Line2D([], [], color="black", marker="o", ms=4, label="kept (clear)"),
        Line2D([], [], color="black", marker="o", ms=4, mfc="none", ls="--", label="masked"),
    ]
    for name, key, (over_time, pooled) in indices:
        for label, part in read.groupby("series", sort=False):
            colour = colours[str(label)]
            kept = part[f"{key}_kept_median"]
            masked = part[f"{key}_masked_median"]
            over_time.plot(part["when"], kept, "o-", color=colour, ms=4)
            over_time.plot(part["when"], masked, "o--", color=colour, ms=4, mfc="none", alpha=0.8)
        over_time.set_ylabel(f"median {name} per scene")
        over_time.set_ylim(-0.2, 1.0)
        _date_axis(over_time)
        over_time.grid(alpha=0.3)
        over_time.legend(handles=styles, fontsize=7, loc="lower left")
        centres = 0.5 * (NDVI_EDGES[:-1] + NDVI_EDGES[1:])
        kept_hist = np.zeros(len(centres))
        masked_hist = np.zeros(len(centres))
        for scene_id in read["id"]:
            got = spectra[scene_id]
            k = np.asarray(got.ndvi_kept if key == "ndvi" else got.evi_kept, dtype=float)
            m = np.asarray(got.ndvi_masked if key == "ndvi" else got.evi_masked, dtype=float)
            if k.size:
                kept_hist += k
            if m.size:
                masked_hist += m
        for hist, label, colour in (
            (kept_hist, "kept (clear)", "#228833"),
            (masked_hist, "masked", "#888888"),
        ):
            total = hist.sum()
            if total:
                pooled.step(centres, 100 * hist / total, where="mid", color=colour, label=label)
        pooled.set_xlabel(name)
        pooled.set_ylabel("% of pixels")
        pooled.legend(fontsize=7)
        pooled.grid(alpha=0.3)
    return _png(fig)


def _share(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{100 * float(value):.2f} %"


def _number(value: Any, digits: int = 2) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def _checks_table(rows: pd.DataFrame, bands: Sequence[str]) -> str:
    read = rows[rows["checked_px"].notna()] if "checked_px" in rows else rows.iloc[:0]
    head = [
        "id",
        "date",
        "series",
        "clear px checked",
        "NDVI kept",
        "NDVI masked",
        "EVI kept",
        "EVI masked",
        *(f"{b} < 0" for b in bands),
        *(f"{b} > 1" for b in bands),
        "red p01",
        "hazy",
        "verdict",
    ]
    out = []
    for rec in read.to_dict("records"):
        verdict = "plausible" if rec["decision"] == "used" else str(rec["reason"])
        cells = [
            str(rec["id"]),
            pd.Timestamp(rec["when"]).strftime("%Y-%m-%d"),
            str(rec["series"]),
            str(int(rec["checked_px"])),
            _number(rec.get("ndvi_kept_median")),
            _number(rec.get("ndvi_masked_median")),
            _number(rec.get("evi_kept_median")),
            _number(rec.get("evi_masked_median")),
            *(_share(rec.get(f"{b}_negative_share")) for b in bands),
            *(_share(rec.get(f"{b}_above_one_share")) for b in bands),
            _number(rec.get("red_p01"), 3),
            _share(rec.get("haze_share")),
            verdict,
        ]
        css = "used" if rec["decision"] == "used" else "review"
        out.append(
            f"<tr class='{css}'>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
        )
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table class='checks'><tr>{header}</tr>{''.join(out)}</table>"


def _colour_png(values: np.ma.MaskedArray, vmin: float, vmax: float, cmap: str) -> str:
    """``values`` through a colour map as an RGBA PNG (masked and NaN pixels transparent),
    without a figure: a quicklook is an image, and drawing axes for it costs more than the
    rest of the report."""
    from matplotlib import colormaps
    from PIL import Image

    span = vmax - vmin if vmax > vmin else 1.0
    scaled = np.ma.masked_invalid((np.ma.asarray(values, dtype=float) - vmin) / span)
    rgba = colormaps[cmap].with_extremes(bad=(1.0, 1.0, 1.0, 0.0))(scaled, bytes=True)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(buf, format="PNG", compress_level=3)
    return base64.b64encode(buf.getvalue()).decode()


def _colour_bar(vmin: float, vmax: float, cmap: str, what: str) -> str:
    """A colour bar as a CSS gradient (no image, no script)."""
    from matplotlib import colormaps

    stops = ", ".join(
        "rgb({}, {}, {})".format(*(int(255 * c) for c in colormaps[cmap](k / 10)[:3]))
        for k in range(11)
    )
    return (
        f"<div class='bar'><span>{vmin:g}</span><span class='ramp' "
        f"style='background:linear-gradient(to right, {stops})'></span>"
        f"<span>{vmax:g}</span> {html.escape(what)}</div>"
    )


def _quicklooks(composite: CompositeProduct) -> list[str]:
    """The NDVI of the composite and its clear-observation count, as figures with colour
    bars."""
    import rasterio

    out = []
    for tif in (composite.reflectance, composite.clear_count):  # one row per composite
        with rasterio.open(tif) as src:
            # a quicklook needs no more than its figure shows: read through the overviews
            factor = max(1, max(src.height, src.width) // QUICKLOOK_PX)
            shape = (src.count, max(1, src.height // factor), max(1, src.width // factor))
            data = src.read(out_shape=shape, masked=True).astype(float)
            names = list(src.descriptions)
        if "red" in names and "nir" in names:
            red, nir = data[names.index("red")], data[names.index("nir")]
            with np.errstate(invalid="ignore", divide="ignore"):
                values = (nir - red) / (nir + red)
            low, high, cmap, what = -0.2, 0.9, "RdYlGn", "NDVI"
            title = f"NDVI of the {composite.label} composite"
        else:
            values = data[0]
            high = float(values.max()) if values.count() else 1.0
            low, cmap, what = 0.0, "viridis", names[0] or tif.stem
            title = f"{what} of the {composite.label} composite"
        b64 = _colour_png(values, low, high, cmap)
        out.append(
            f"<figure class='quicklook'><img alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{b64}'><figcaption>{html.escape(title)} "
            f"({len(composite.scenes)} scenes){_colour_bar(low, high, cmap, what)}"
            "</figcaption></figure>"
        )
    return out


def _figure_html(title: str, b64: str) -> str:
    return (
        f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{b64}'>"
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def _section(key: str, body: str, note: str = "") -> str:
    extra = f"<p>{html.escape(note)}</p>" if note else ""
    return f"<section id='{key}'><h2>{html.escape(PANELS[key])}</h2>{extra}{body}</section>"


def _scenes_table(scenes: pd.DataFrame) -> str:
    columns = [
        c
        for c in (
            "id",
            "time",
            "sensor",
            "tile",
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
    header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def report_sections(outcome: Outcome, scenes: pd.DataFrame, bands: Sequence[str]) -> list[str]:
    """The report's panels that need no product file (map, series, histograms, checks): the
    products stage draws them while the composites are written."""
    config = outcome.config
    threshold = config.mask.cloud_threshold
    rows = _with_series(scenes[scenes["decision"] != "fallback"])
    colours = _colours(list(dict.fromkeys(rows["series"])))
    spectra = dict(outcome.read.spectra)

    sections = []
    drawn = _map(outcome.planned, rows, colours)
    if drawn is not None:
        sections.append(_section("map", _figure_html(drawn[1], drawn[0])))
    sizes = rows["series"].value_counts(sort=False)
    listed = ", ".join(f"{label} ({sizes[label]} scenes)" for label in colours)
    sections.append(
        _section(
            "series",
            _figure_html(f"Series: {listed}", _timeseries(rows, threshold, colours)),
            "One line per series (tile or path/row, and sensor); markers: o used, "
            "D review, x over threshold.",
        )
    )
    sections.append(
        _section(
            "histograms", _figure_html(PANELS["histograms"], _histograms(rows, threshold, colours))
        )
    )
    checks = _checks_figure(rows, spectra, colours)
    checks_body = (_figure_html(PANELS["checks"], checks) if checks else "") + _checks_table(
        rows, bands
    )
    mask = config.mask
    sections.append(
        _section(
            "checks",
            checks_body,
            "Kept pixels: clear; masked: valid pixels the mask removed. Limits: "
            f"< 0 at most {100 * mask.max_negative_share:g} %, > 1 at most "
            f"{100 * mask.max_bright_share:g} %, red 1st percentile at most {mask.dark_floor:g}, "
            f"hazy (HOT > 0, with blue) at most {100 * mask.max_haze_share:g} %, NDVI jump "
            f"from both series neighbours at most {mask.max_ndvi_jump:g}. "
            + ("" if "blue" in bands else "Blue not loaded: no EVI and no haze test."),
        )
    )
    return sections


def write_report(
    path: Path,
    outcome: Outcome,
    written: Written,
    cube: xr.Dataset,
    sections: Sequence[str] | None = None,
) -> Path:
    """Write ``report.html`` for a run's stage outputs and products (``sections``: the
    panels :func:`report_sections` drew already)."""
    config = outcome.config
    scenes = written.scenes
    threshold = config.mask.cloud_threshold
    mask = config.mask
    sections = list(
        sections if sections is not None else report_sections(outcome, scenes, written.bands)
    )
    ordered = sorted(written.composites, key=lambda c: c.label)
    if ordered:
        looks = "".join(f"<div class='composite'>{''.join(_quicklooks(c))}</div>" for c in ordered)
        sections.append(
            _section(
                "composites",
                looks,
                f"{len(ordered)} {config.composite.period} {config.composite.method} composite(s).",
            )
        )
    sections.append(_section("scenes", _scenes_table(scenes)))

    counts = scenes["decision"].value_counts().to_dict()
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    masked = ", ".join(mask.masked_flags)
    body = "\n".join(sections)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clearcube run report</title>
<style>body{{font-family:sans-serif;margin:2em}}figure{{display:inline-block;margin:0.5em}}
img{{max-width:100%}}figure.quicklook img{{width:360px;image-rendering:pixelated}}
.bar{{font-size:11px}}.ramp{{display:inline-block;width:160px;height:10px;margin:0 4px}}
table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;padding:2px 6px}}
tr.used{{background:#e8f5e9}}tr.over_threshold{{background:#ffebee}}
tr.review{{background:#fff8e1}}tr.fallback{{background:#eceff1}}</style></head>
<body><h1>clearcube run report</h1>
<p>{len(scenes)} scenes: {html.escape(summary)}. Threshold {threshold:.0%} of valid pixels;
masked flags {html.escape(masked)}; engine {html.escape(config.load.engine)};
grid EPSG:{cube.odc.geobox.crs.epsg} at {abs(cube.odc.geobox.resolution.x):g} m.</p>
{body}
<p>Every decision above is in audit.jsonl; <code>clearcube verify</code> re-checks it.</p>
</body></html>
"""
    with atomic_path(path) as tmp:
        tmp.write_text(page)
    return path

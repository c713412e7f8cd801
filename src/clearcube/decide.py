"""The decide stage: every scene routed to one decision, with its reason.

Decisions, in the order the rules are tried:

- ``fallback``: the scene cannot be judged: no plan (no QA asset, unknown sensor, refused
  href), a read failure of any of its assets, or a QA that carries no information (an all-zero
  QA60 of processing baseline >= 04.00; no defined QA pixel inside the area of interest although
  the footprint covers it). Never treated as clear. ``MaskConfig.fallback`` says what happens
  next: ``exclude`` (recorded, left out of products), ``review`` (also queued for a person) or
  ``fail`` (the run writes what it has, then fails naming the scene).
- ``no_valid_data``: no valid pixel in the area of interest (the scene does not reach it).
- ``over_threshold``: cloud fraction over valid pixels above ``cloud_threshold``.
- ``review``: the provider's ``eo:cloud_cover`` disagrees by more than ``review_margin_pp``
  points with the provider's own definition applied to the scene's whole QA (like with like),
  or the fraction is a robust outlier of its series (same tile or path/row and sensor, a
  floor on the spread so a clear series has none).
- ``review`` too: a used scene whose reflectance fails a science check (read stage,
  :mod:`clearcube.checks`): clear pixels below 0 or above 1, a dark floor that betrays an
  unapplied offset, haze the mask kept; or whose median NDVI of kept pixels jumps away from
  both its series neighbours (one date out of line: cloud or haze the mask kept).
- ``used``: everything else.

Then a person's review resolutions (``clearcube review``, :mod:`clearcube.review`) are applied:
an accepted scene is ``used``, a rejected one ``rejected``, each naming the reason and the
decision it replaced; a fallback is never made ``used``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .checks import Spectra, verdicts
from .config import MaskConfig
from .engines import ReadFailure
from .plan import Planned, Slice
from .review import Resolution, apply_resolution
from .screen import Screened, ScreenedSlice

__all__ = ["DECISIONS", "Decision", "Decisions", "decide"]

DECISIONS = ("used", "over_threshold", "review", "fallback", "no_valid_data", "rejected")


@dataclass(frozen=True)
class Decision:
    """How one scene (cube time slice, or unplannable item) was routed.

    Attributes
    ----------
    id
        Scene id (slice id when grouped).
    decision
        One of :data:`DECISIONS`.
    reason
        Why, in one line (empty for ``used``).
    queued
        Whether the scene goes to the review queue (``review.jsonl``).
    fallback
        For a fallback, why it could not be judged: ``unreadable`` (a read failed; a rerun
        retries it), ``uninformative`` (the QA says nothing) or ``unplannable`` (no plan).
    """

    id: str
    decision: str
    reason: str = ""
    queued: bool = False
    fallback: str = ""


@dataclass(frozen=True)
class Decisions:
    """The decisions of a run: one per cube slice (in cube order), then one per item the plan
    stage could not use.

    Attributes
    ----------
    slices
        One decision per slice of the plan, in the same order.
    items
        One decision per plan-stage fallback.
    policy
        The fallback policy that was applied.
    """

    slices: tuple[Decision, ...]
    items: tuple[Decision, ...] = ()
    policy: str = "exclude"
    _by_id: Mapping[str, Decision] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {d.id: d for d in (*self.slices, *self.items)})

    @property
    def all(self) -> tuple[Decision, ...]:
        return (*self.slices, *self.items)

    def of(self, scene_id: str) -> Decision:
        """The decision of one scene."""
        return self._by_id[scene_id]

    @property
    def used(self) -> tuple[int, ...]:
        """Positions of the used slices in the cube."""
        return tuple(i for i, d in enumerate(self.slices) if d.decision == "used")

    @property
    def fallbacks(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.all if d.decision == "fallback")

    @property
    def unreadable(self) -> tuple[Decision, ...]:
        """Fallbacks because a read failed (a rerun retries them)."""
        return tuple(d for d in self.all if d.fallback == "unreadable")

    @property
    def failing(self) -> tuple[Decision, ...]:
        """Under the ``fail`` policy, the scenes that make the run fail."""
        return self.fallbacks if self.policy == "fail" else ()

    def counts(self) -> dict[str, int]:
        """How many scenes got each decision (``used``, ``excluded``, ...)."""
        out: dict[str, int] = {}
        for d in self.all:
            out[d.decision] = out.get(d.decision, 0) + 1
        return out


def decide(
    planned: Planned,
    screened: Screened,
    config: MaskConfig,
    *,
    read_failures: Mapping[str, Sequence[ReadFailure]] | None = None,
    spectra: Mapping[str, Spectra] | None = None,
    resolutions: Mapping[str, Resolution] | None = None,
) -> Decisions:
    """Route every slice of ``planned`` and every plan-stage fallback.

    Parameters
    ----------
    planned
        The plan stage's output (slices, fallbacks, area of interest).
    screened
        The screen stage's per-slice counts and read failures.
    config
        Threshold, review margin, outlier z, fallback policy.
    read_failures
        Failures of the reflectance reads (read stage), by slice id: such a slice becomes a
        fallback too.
    spectra
        The science checks' statistics of the slices read (read stage), by slice id: a used
        slice whose reflectance is implausible goes to review.
    resolutions
        A person's review resolutions, by scene id (:func:`clearcube.review.resolutions`),
        applied last.
    """
    policy = config.fallback
    queue_fallbacks = policy == "review"
    series = _series_spread(planned, screened, config)

    out: list[Decision] = []
    for sl, sc in zip(planned.slices, screened.slices, strict=True):
        failures = [*sc.failures, *((read_failures or {}).get(sl.id, ()))]
        found = _fallback_reason(sl, sc, failures, planned)
        if found is not None:
            kind, reason = found
            out.append(Decision(sl.id, "fallback", reason, queue_fallbacks, kind))
            continue
        routed = _route_judged(sl, sc, config, series.get(_series_key(sl)))
        checked = (spectra or {}).get(sl.id)
        if routed.decision == "used" and checked is not None:
            reasons = verdicts(checked, sl.members, config)
            if reasons:
                routed = Decision(sl.id, "review", "; ".join(reasons), queued=True)
        out.append(routed)
    if spectra:
        jumps = _ndvi_jumps(planned, out, spectra, config)
        out = [
            Decision(d.id, "review", jumps[d.id], queued=True) if d.id in jumps else d for d in out
        ]
    resolved = resolutions or {}
    out = [apply_resolution(d, resolved.get(d.id)) for d in out]
    items = tuple(
        Decision(fb.id, "no_valid_data", fb.reason)
        if fb.kind == "outside"
        else Decision(fb.id, "fallback", fb.reason, queue_fallbacks, fb.kind)
        for fb in planned.fallbacks
    )
    return Decisions(tuple(out), items, policy)


def _fallback_reason(
    sl: Slice, sc: ScreenedSlice, failures: Sequence[ReadFailure], planned: Planned
) -> tuple[str, str] | None:
    """(kind, reason) when the slice cannot be judged."""
    if failures:
        first = min(failures, key=lambda f: f.skipped)  # the failure itself, not its echoes
        more = f" (and {len(failures) - 1} more read failures)" if len(failures) > 1 else ""
        return "unreadable", f"{first.reason()}{more}; excluded, never treated as clear"
    if sc.uninformative:
        return "uninformative", f"{sc.uninformative}; excluded, never treated as clear"
    if sc.valid_px == 0 and sc.aoi_px > 0 and _covers_aoi(sl, planned):
        return "uninformative", (
            f"{sl.id}: the QA has no defined pixel inside the area of interest although the "
            "footprint covers it; excluded, never treated as clear"
        )
    return None


def _covers_aoi(sl: Slice, planned: Planned) -> bool:
    """Whether the slice's footprints together contain the area of interest."""
    from .aoi import aoi_polygon, footprint_polygon

    aoi = aoi_polygon(planned.bbox, planned.geometry)
    if aoi is None:
        return False
    shapes = [footprint_polygon(m.footprint, m.bbox) for m in sl.members]
    shapes = [s for s in shapes if s is not None]
    if not shapes:
        return False
    from shapely import union_all

    return bool(union_all(shapes).buffer(1e-9).contains(aoi))


def _series_key(sl: Slice) -> tuple[str, str]:
    """The series a slice belongs to: its tile (or path/row) and sensor."""
    return (sl.first.tile or sl.id, sl.sensor)


def _series_spread(
    planned: Planned, screened: Screened, config: MaskConfig
) -> dict[tuple[str, str], tuple[float, float]]:
    """Per series of at least four judged scenes: the median cloud fraction and the spread
    (1.4826 MAD, at least ``outlier_floor``)."""
    values: dict[tuple[str, str], list[float]] = {}
    for sl, sc in zip(planned.slices, screened.slices, strict=True):
        f = sc.cloud_fraction
        if np.isfinite(f) and not sc.failures and not sc.uninformative:
            values.setdefault(_series_key(sl), []).append(f)
    out = {}
    for key, fractions in values.items():
        if len(fractions) < 4:
            continue
        arr = np.asarray(fractions)
        median = float(np.median(arr))
        spread = max(1.4826 * float(np.median(np.abs(arr - median))), config.outlier_floor)
        out[key] = (median, spread)
    return out


def _ndvi_jumps(
    planned: Planned,
    routed: Sequence[Decision],
    spectra: Mapping[str, Spectra],
    config: MaskConfig,
) -> dict[str, str]:
    """Reasons, by slice id, for the used slices whose median NDVI of kept pixels jumps away
    from both neighbours of its series (in time order, among the used slices with enough
    clear pixels checked), in the same direction, by more than ``max_ndvi_jump``. The first and
    last scene of a series have one neighbour and are not judged: a jump there cannot be told
    from a lasting change."""
    series: dict[tuple[str, str], list[tuple[np.datetime64, Slice, float]]] = {}
    for sl, d in zip(planned.slices, routed, strict=True):
        checked = spectra.get(sl.id)
        if d.decision != "used" or checked is None or checked.clear_px < config.min_check_px:
            continue
        ndvi = checked.median_ndvi()
        if ndvi is not None:
            series.setdefault(_series_key(sl), []).append((sl.time, sl, ndvi))
    out: dict[str, str] = {}
    limit = config.max_ndvi_jump
    for rows in series.values():
        rows.sort(key=lambda r: r[0])
        triples = zip(rows, rows[1:], rows[2:], strict=False)  # each scene with its neighbours
        for (_, _, before), (_, sl, ndvi), (_, _, after) in triples:
            up, down = ndvi - before, ndvi - after
            if up * down > 0 and min(abs(up), abs(down)) > limit:
                out[sl.id] = (
                    f"the median NDVI of kept pixels {ndvi:.2f} jumps from its series "
                    f"neighbours ({before:.2f} before, {after:.2f} after; tile "
                    f"{sl.first.tile or '?'}, {sl.sensor}; limit {limit:g}): cloud or haze the "
                    "mask kept, or a changed offset"
                )
    return out


def _route_judged(
    sl: Slice, sc: ScreenedSlice, config: MaskConfig, series: tuple[float, float] | None
) -> Decision:
    f = sc.cloud_fraction
    provider = sl.cloud_cover
    if not np.isfinite(f):
        return Decision(sl.id, "no_valid_data", "no valid pixel in the area of interest")
    if f > config.cloud_threshold:
        return Decision(
            sl.id,
            "over_threshold",
            f"cloud fraction {f:.3f} > threshold {config.cloud_threshold}",
            queued=True,
        )
    own = sc.provider_definition
    if own is not None and np.isfinite(provider) and abs(own - provider) > config.review_margin_pp:
        # like with like: the provider's figure against its own definition applied to the
        # whole scene's QA (not against the area's fraction, nor clearcube's own mask rules)
        return Decision(
            sl.id,
            "review",
            f"the provider's eo:cloud_cover {provider:.1f} % disagrees with the scene's own QA "
            f"({own:.1f} % by the provider's definition over the whole scene): more than "
            f"{config.review_margin_pp} points apart",
            queued=True,
        )
    if series is not None:
        median, spread = series
        z = abs(f - median) / spread
        if z > config.outlier_z:
            return Decision(
                sl.id,
                "review",
                f"cloud fraction {f:.3f} is an outlier of its series (tile "
                f"{sl.first.tile or '?'}, {sl.sensor}: median {median:.3f}, z = {z:.1f})",
                queued=True,
            )
    return Decision(sl.id, "used")

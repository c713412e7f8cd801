"""Routing each scene: used, over threshold, sent to review, or a fallback with its reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .config import MaskConfig

__all__ = ["DECISIONS", "route"]

DECISIONS = ("used", "over_threshold", "review", "fallback", "no_valid_data")


def route(
    table: pd.DataFrame, fallbacks: Sequence[dict[str, str]], config: MaskConfig
) -> pd.DataFrame:
    """Add ``decision`` and ``reason`` to a :func:`clearcube.cloud_fraction` table, and a row
    per fallback item.

    Rules, in order: no valid pixel in the area -> ``no_valid_data``; cloud fraction over the
    threshold -> ``over_threshold``; a gap of more than ``review_margin_pp`` to the provider's
    ``eo:cloud_cover``, or a robust z-score over ``outlier_z`` against the series ->
    ``review`` (kept out of products until a person decides); otherwise ``used``.
    """
    out = table.reset_index()
    fraction = out["cloud_fraction"].to_numpy(dtype=float)
    finite = np.isfinite(fraction)
    median = float(np.median(fraction[finite])) if finite.any() else np.nan
    mad = float(np.median(np.abs(fraction[finite] - median))) if finite.any() else np.nan
    decisions: list[str] = []
    reasons: list[str] = []
    for i, row in out.iterrows():
        f = fraction[int(str(i))]
        provider = row.get("provider_cloud_cover", np.nan)
        if not np.isfinite(f):
            decisions.append("no_valid_data")
            reasons.append("no valid pixel in the area of interest")
        elif f > config.cloud_threshold:
            decisions.append("over_threshold")
            reasons.append(f"cloud fraction {f:.3f} > threshold {config.cloud_threshold}")
        elif (
            provider is not None
            and np.isfinite(provider)
            and abs(100 * f - provider) > config.review_margin_pp
        ):
            decisions.append("review")
            reasons.append(
                f"cloud fraction {100 * f:.1f} % vs provider {provider:.1f} %: more than "
                f"{config.review_margin_pp} points apart"
            )
        elif mad > 0 and abs(f - median) / (1.4826 * mad) > config.outlier_z:
            z = abs(f - median) / (1.4826 * mad)
            decisions.append("review")
            reasons.append(f"cloud fraction {f:.3f} is an outlier of the series (z = {z:.1f})")
        else:
            decisions.append("used")
            reasons.append("")
    out["decision"] = decisions
    out["reason"] = reasons
    extra: list[dict[str, Any]] = [
        {"id": fb["id"], "decision": "fallback", "reason": fb["reason"]} for fb in fallbacks
    ]
    if extra:
        out = pd.concat([out, pd.DataFrame(extra)], ignore_index=True)
    return out

"""What the stages of one run decided: the typed input of every product writer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .catalog import Found
    from .decide import Decisions
    from .plan import Planned
    from .read import ReadResult
    from .runconfig import RunConfig
    from .screen import Screened

__all__ = ["Outcome"]


@dataclass(frozen=True, eq=False)
class Outcome:
    """The stage outputs of one run, in stage order.

    Attributes
    ----------
    config
        The run config.
    found
        The search stage's items.
    planned
        The plan stage's slices, fallbacks and grid.
    screened
        The screen stage's per-slice counts, clear windows and QA read failures.
    decisions
        The decide stage's routing (after the read stage's failures).
    read
        The read stage's bands and reflectance read failures.
    """

    config: RunConfig
    found: Found
    planned: Planned
    screened: Screened
    decisions: Decisions
    read: ReadResult

"""Sensor families: QA encodings and decoders (and, from the search layer, item identification)."""

from __future__ import annotations

from ._lut import Encoding, decode_block
from .encodings import ENCODINGS, decode, get_encoding, is_clear
from .sentinel2 import parse_baseline, qa60_uninformative

__all__ = [
    "ENCODINGS",
    "Encoding",
    "decode_block",
    "decode",
    "get_encoding",
    "is_clear",
    "parse_baseline",
    "qa60_uninformative",
]

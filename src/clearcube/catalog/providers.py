"""Provider profiles, as data: where each public STAC API lives, its collection ids, and how
its asset hrefs are signed. Asset keys per sensor family live with the sensors
(:mod:`clearcube.sensors`), which read them the same way whatever the provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import CatalogError

__all__ = ["PROVIDERS", "Provider", "get_provider"]


@dataclass(frozen=True)
class Provider:
    """One STAC API.

    Attributes
    ----------
    name
        Short name accepted by :func:`clearcube.search` as ``source``.
    url
        STAC API root.
    collections
        Collection ids by product: ``sentinel-2-l2a``, ``landsat-c2-l2``, ``hls``.
    signing
        ``None``, or ``"planetary-computer"``: hrefs need a SAS token, which the reads add
        right before each open (:mod:`clearcube.sas`); items and products keep them unsigned.
    notes
        Facts a user should know (requester-pays buckets, authentication).
    """

    name: str
    url: str
    collections: dict[str, tuple[str, ...]] = field(default_factory=dict)
    signing: str | None = None
    notes: str = ""


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "earth-search",
            "https://earth-search.aws.element84.com/v1",
            {
                "sentinel-2-l2a": ("sentinel-2-l2a", "sentinel-2-c1-l2a"),
                "landsat-c2-l2": ("landsat-c2-l2",),
            },
            notes="Landsat assets are in a requester-pays bucket (AWS credentials needed).",
        ),
        Provider(
            "planetary-computer",
            "https://planetarycomputer.microsoft.com/api/stac/v1",
            {
                "sentinel-2-l2a": ("sentinel-2-l2a",),
                "landsat-c2-l2": ("landsat-c2-l2",),
                "hls": ("hls2-s30", "hls2-l30"),
            },
            signing="planetary-computer",
            notes="hrefs need a SAS token: clearcube signs them right before each read.",
        ),
        Provider(
            "cdse",
            "https://stac.dataspace.copernicus.eu/v1",
            {"sentinel-2-l2a": ("sentinel-2-l2a",)},
            notes="Assets are JP2 on s3://eodata (CDSE S3 credentials) or behind OIDC.",
        ),
        Provider(
            "usgs-landsatlook",
            "https://landsatlook.usgs.gov/stac-server",
            {"landsat-c2-l2": ("landsat-c2l2-sr",)},
            notes="https assets need EROS authorisation; s3://usgs-landsat is requester-pays.",
        ),
    )
}


def get_provider(name: str) -> Provider:
    """The profile named ``name``; a :class:`CatalogError` naming the known ones if none."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise CatalogError(
            f"unknown provider {name!r}; known providers: {', '.join(PROVIDERS)} "
            "(or pass a STAC API URL, a catalog.json or an ItemCollection file)"
        ) from None

"""Products of a run: masked cube (Zarr), composites (COG), output STAC, audit trail, report."""

from __future__ import annotations

from .audit import AuditLog, AuditVerification, verify_audit

__all__ = ["AuditLog", "AuditVerification", "verify_audit"]

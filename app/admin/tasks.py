"""Periodic upkeep of the admin area: the audit log keeps AUDIT_KEEP_DAYS days."""

from __future__ import annotations

import logging

from flask import current_app
from huey import crontab

from app.admin.services import prune_audit_events
from app.jobs import periodic

log = logging.getLogger(__name__)


@periodic(crontab(hour="3", minute="17"))
def prune_audit_log() -> int:
    """Every night: delete audit events older than AUDIT_KEEP_DAYS."""
    removed = prune_audit_events(int(current_app.config["AUDIT_KEEP_DAYS"]))
    if removed:
        log.info("Pruned %d audit event(s) older than the retention period.", removed)
    return removed

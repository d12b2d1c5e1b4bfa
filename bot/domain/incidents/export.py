"""An incident's timeline as JSON and Markdown, and the post-mortem draft written when it is resolved."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.config.durations import format_duration
from bot.domain.incidents.model import Incident, TimelineEntry

KIND_LABELS = {
    "declared": "Declared",
    "update": "Update",
    "role": "Role",
    "ack": "Acknowledged",
    "freeze": "Deploy freeze",
    "reminder": "Reminder",
    "snooze": "Snoozed",
    "escalation": "Escalation",
    "note": "Note",
    "service_event": "Service event",
    "resolved": "Resolved",
}


def _utc(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _stamp(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _line(text: str) -> str:
    """One Markdown line: newlines folded, so user text cannot open headings or break the list."""
    return " ".join(text.split())


def as_json(incident: Incident, entries: list[TimelineEntry]) -> str:
    document = {
        "incident": {
            "id": incident.ref,
            "title": incident.title,
            "severity": incident.severity,
            "services": list(incident.services),
            "status": incident.status.value,
            "impact": incident.impact,
            "channel": incident.channel_name,
            "commander": incident.commander,
            "comms": incident.comms,
            "scribe": incident.scribe,
            "declared_by": incident.declared_by,
            "declared_at": _utc(incident.declared_at),
            "acknowledged_at": _utc(incident.acknowledged_at),
            "resolved_at": _utc(incident.resolved_at),
        },
        "timeline": [
            {
                "at": _utc(e.at),
                "kind": e.kind.value,
                "actor": e.actor,
                "text": e.text,
                "link": e.link,
                **({"data": e.data} if e.data else {}),
            }
            for e in entries
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def timeline_markdown(entries: list[TimelineEntry]) -> str:
    lines = []
    for e in entries:
        link = f" ([message]({e.link}))" if e.link else ""
        lines.append(
            f"- **{e.at.astimezone(UTC):%H:%M}** · {KIND_LABELS.get(e.kind.value, e.kind.value)} · @{e.actor} · {_line(e.text)}{link}"
        )
    return "\n".join(lines) or "- (no entries)"


def as_markdown(incident: Incident, entries: list[TimelineEntry]) -> str:
    return f"# {incident.ref} timeline: {_line(incident.headline)}\n\nTimes in UTC.\n\n{timeline_markdown(entries)}\n"


def postmortem(incident: Incident, entries: list[TimelineEntry], now: datetime) -> str:
    """The post-mortem draft: what opsbot knows, and the sections people fill in within 48 hours."""
    services = ", ".join(incident.services) or "—"
    roles = ", ".join(
        f"{name} @{user}"
        for name, user in (("commander", incident.commander), ("comms", incident.comms), ("scribe", incident.scribe))
        if user
    )
    service_events = [e for e in entries if e.kind.value == "service_event"]
    changes = "\n".join(f"- {e.at.astimezone(UTC):%H:%M} {_line(e.text)}" for e in service_events) or "- none recorded"
    return "\n".join(
        [
            f"# Post-mortem (draft): {incident.ref} {_line(incident.headline)}",
            "",
            f"_Draft written by opsbot at {_stamp(now)}. Fill in the sections marked *To fill in* and review it within 48 hours._",
            "",
            f"- **Severity:** {incident.severity}",
            f"- **Services:** {services}",
            f"- **Declared:** {_stamp(incident.declared_at)} by @{incident.declared_by}",
            f"- **Acknowledged:** {_stamp(incident.acknowledged_at)}"
            + (f" by @{incident.acknowledged_by}" if incident.acknowledged_by else ""),
            f"- **Resolved:** {_stamp(incident.resolved_at)}",
            f"- **Duration:** {format_duration(incident.duration(now))}",
            f"- **Roles:** {roles}",
            f"- **Channel:** #{incident.channel_name}",
            "",
            "## Summary",
            "",
            _line(incident.resolution or "") or "*To fill in:* what happened, in two or three sentences.",
            "",
            "## Impact",
            "",
            _line(incident.impact) or "*To fill in:* who was affected, how, and for how long.",
            "",
            "## Timeline (UTC)",
            "",
            timeline_markdown(entries),
            "",
            "## Deploys, rollbacks and flag changes during the incident",
            "",
            changes,
            "",
            "## Root cause",
            "",
            "*To fill in:* why it happened (ask why until the answer is a process or a system, not a person).",
            "",
            "## What went well / what went badly",
            "",
            "*To fill in.*",
            "",
            "## Action items",
            "",
            "| Action | Owner | Due | Ticket |",
            "|---|---|---|---|",
            "| *to fill in* | | | |",
            "",
        ]
    )

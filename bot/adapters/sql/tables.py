"""Every table opsbot keeps, in one place; the migrations in ``bot/migrations`` build exactly these (a test compares)."""

from __future__ import annotations

import sqlalchemy as sa

from bot.adapters.sql.engine import metadata

# The audit log: append-only, hash-chained (its triggers are in the migrations).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("service", sa.String(64), nullable=True, index=True),
    sa.Column("environment", sa.String(64), nullable=True),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("channel", sa.String(32), nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
)
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# Approval requests and their votes.
approval_requests = sa.Table(
    "approval_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("requester", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("service", sa.String(64), nullable=True),
    sa.Column("environment", sa.String(64), nullable=True),
    sa.Column("required", sa.Integer, nullable=False),
    sa.Column("require_admin", sa.Boolean, nullable=False),
    sa.Column("admin_self_approval", sa.Boolean, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("link", sa.Text, nullable=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("channel", sa.String(32), nullable=True),
    sa.Column("message_ts", sa.String(32), nullable=True),
    sa.Column("checklist", sa.Text, nullable=True),  # JSON: [{text, satisfied_by, satisfied}], null when none
)
approval_votes = sa.Table(
    "approval_votes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(32), sa.ForeignKey("approval_requests.id"), nullable=False, index=True),
    sa.Column("voter", sa.String(32), nullable=False),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("as_admin", sa.Boolean, nullable=False),
    sa.Column("self_approval", sa.Boolean, nullable=False),
    sa.UniqueConstraint("request_id", "voter"),
)
# Each approver's ticks on a request's checklist (``item``: the item's position); an unticked item has no row.
approval_checklist_ticks = sa.Table(
    "approval_checklist_ticks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(32), sa.ForeignKey("approval_requests.id"), nullable=False, index=True),
    sa.Column("voter", sa.String(32), nullable=False),
    sa.Column("item", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("request_id", "voter", "item"),
)

# Deploys and rollbacks, and ad-hoc freezes.
deploys = sa.Table(
    "deploys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("environment", sa.String(64), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("previous_version", sa.String(128), nullable=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("requester", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("hotfix", sa.Boolean, nullable=False),
    sa.Column("approval_id", sa.String(32), nullable=True),
    sa.Column("approvers", sa.Text, nullable=False),
    sa.Column("lock_name", sa.String(200), nullable=False),
    sa.Column("lock_token", sa.String(64), nullable=True),
    sa.Column("lock_fence", sa.BigInteger, nullable=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("output_tail", sa.Text, nullable=True),
    sa.Column("rollback_of", sa.String(16), nullable=True),
    sa.Column("rolled_back_by", sa.String(16), nullable=True),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("provider_started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("provider_process", sa.String(200), nullable=True),
    sa.Column("cancel_requested_by", sa.String(32), nullable=True),
    sa.Column("ci_state", sa.String(16), nullable=True),  # the CI gate: pending, green, failed (None: no gate)
    sa.Column("ci_summary", sa.Text, nullable=True),
    sa.Column("ci_checked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_deploys_service_environment", "service", "environment"),
    # At most one deploy or rollback per service and environment that is not over: the database itself says so,
    # so a Redis lock that vanished (TTL, failover, eviction) can never admit a second one.
    sa.Index(
        "uq_deploys_live_target",
        "service",
        "environment",
        unique=True,
        sqlite_where=sa.text("state IN ('requested', 'approved', 'running')"),
        postgresql_where=sa.text("state IN ('requested', 'approved', 'running')"),
    ),
)
deploy_freezes = sa.Table(
    "deploy_freezes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

# Incidents and their timelines.
incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("services", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("impact", sa.Text, nullable=False),
    sa.Column("eta", sa.Text, nullable=False),
    sa.Column("declared_by", sa.String(32), nullable=False),
    sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("commander", sa.String(32), nullable=False),
    sa.Column("comms", sa.String(32), nullable=True),
    sa.Column("scribe", sa.String(32), nullable=True),
    sa.Column("participants", sa.Text, nullable=False),
    sa.Column("channel_id", sa.String(32), nullable=True, unique=True),
    sa.Column("channel_name", sa.String(80), nullable=False),
    sa.Column("status_ts", sa.String(32), nullable=True),
    sa.Column("summary_channel", sa.String(32), nullable=True),
    sa.Column("summary_ts", sa.String(32), nullable=True),
    sa.Column("last_update_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("next_update_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reminder_seq", sa.Integer, nullable=False),
    sa.Column("reminded_seq", sa.Integer, nullable=False),
    sa.Column("escalation_level", sa.Integer, nullable=False),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acknowledged_by", sa.String(32), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolution", sa.Text, nullable=True),
    sa.Column("postmortem", sa.Text, nullable=True),
    sa.Column("frozen", sa.Text, nullable=False),
)
incident_timeline = sa.Table(
    "incident_timeline",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("link", sa.Text, nullable=True),
    sa.Column("key", sa.String(200), nullable=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("public_text", sa.Text, nullable=True),  # what the public status page shows of it (0008)
    sa.UniqueConstraint("incident_id", "key"),
)

# opsbot's record of flag changes; one head row per flag and environment is the lock.
flag_changes = sa.Table(
    "flag_changes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(16), nullable=False, unique=True),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("flag", sa.String(100), nullable=False),
    sa.Column("environment", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("approved_by", sa.Text, nullable=False),
    sa.Column("before_enabled", sa.Boolean, nullable=True),
    sa.Column("before_killed", sa.Boolean, nullable=True),
    sa.Column("before_rollout", sa.Integer, nullable=True),
    sa.Column("after_enabled", sa.Boolean, nullable=False),
    sa.Column("after_killed", sa.Boolean, nullable=False),
    sa.Column("after_rollout", sa.Integer, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message_channel", sa.String(32), nullable=True),
    sa.Column("message_ts", sa.String(32), nullable=True),
    sa.Index("ix_flag_changes_provider_flag", "provider", "flag"),
)
flag_heads = sa.Table(
    "flag_heads",
    metadata,
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("flag", sa.String(100), primary_key=True),
    sa.Column("environment", sa.String(64), primary_key=True),
    sa.Column("change_id", sa.String(16), nullable=True),
)


# Durable operations: side effects recorded in the transaction of the change that implies them, delivered after.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),  # slack.post | slack.update | slack.dm | slack.pin | slack.unpin | job.*
    sa.Column("key", sa.String(200), nullable=False, index=True),  # the message key (Slack) or the job key
    sa.Column("stream", sa.String(200), nullable=False, index=True),  # one stream's effects are delivered in order
    sa.Column("target", sa.String(100), nullable=True),  # the channel or user; the job's name
    sa.Column("payload", sa.Text, nullable=False),  # the rendered message, or the job's payload (JSON)
    sa.Column("run_at", sa.DateTime(timezone=True), nullable=True),  # job.schedule: when the job runs
    sa.Column("origin", sa.String(200), nullable=False),  # what recorded it, for people: "deploy d-1a2b3c4d"
    sa.Column("state", sa.String(16), nullable=False, index=True),  # pending | delivered | failed | dropped | superseded
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
)
slack_messages = sa.Table(
    "slack_messages",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # a message key: delivering it again updates, never posts a twin
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("ts", sa.String(32), nullable=False),
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
)
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),  # "reconciler": one replica at a time does its rounds
    sa.Column("holder", sa.String(100), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# Alertmanager's alert groups (one row per groupKey) and what opsbot did with them; their Slack message is the
# outbox key "alert-group:<id>:<episode>" (slack_messages).
alert_groups = sa.Table(
    "alert_groups",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),  # sha256 of groupKey (which has no length limit)
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("receiver", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # firing | resolved
    sa.Column("episode", sa.Integer, nullable=False),
    sa.Column("notifications", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON: labels, annotations, alerts, externalURL, truncatedAlerts
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("silence_id", sa.String(64), nullable=True),
    sa.Column("silenced_by", sa.String(32), nullable=True),
    sa.Column("silenced_until", sa.DateTime(timezone=True), nullable=True),
)

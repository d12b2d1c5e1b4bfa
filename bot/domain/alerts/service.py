"""The alerts family as the app sees it: a notification from Alertmanager in, one message per group out, and the
message's buttons (Declare incident, Silence 1h, Roll back)."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta

from bot.domain.alerts.deps import AlertDeps
from bot.domain.alerts.messages import AlertGroupMessage, Silenced
from bot.domain.alerts.model import AlertGroup, GroupStatus, Notification, Received, Silence, apply, new_group
from bot.domain.alerts.ports import AlertsUnitOfWork, SilenceRequest
from bot.domain.shared.audit import entry, record_quietly
from bot.domain.shared.errors import Conflict, NotFound
from bot.domain.shared.family import Family
from bot.domain.shared.policy import Actor, Role
from bot.domain.shared.ports import Reply

SILENCE_ROLE = Role.DEPLOYER  # who may silence: the people on call who also ship and roll back (docs/alerts.md)
MAX_REASON = 500
ALERTMANAGER = Actor(user_id="alertmanager", source="webhook")  # who the audit log says sent a notification


def _new_id() -> str:
    return f"ag-{secrets.token_hex(5)}"


class Alerts:
    """Alert groups from Alertmanager's webhook, and what their buttons do."""

    def __init__(self, deps: AlertDeps) -> None:
        self._d = deps

    def family(self) -> Family:
        return Family("alerts")

    # ----- Alertmanager's webhook -----
    def receive(self, notification: Notification) -> Received:
        """Record ``notification`` and post (first notification of an episode) or edit its group's message, through
        the outbox in the same transaction. Repeats of what is already shown change nothing in Slack. Each
        notification is audited (``alert.received``: posted, updated or unchanged) once it is recorded.

        Raises ``Unavailable`` when the database cannot be reached (nothing recorded: Alertmanager retries)."""
        received = self._record(notification)
        group = received.group
        outcome = "posted" if received.new_message else ("updated" if received.changed else "unchanged")
        params = {
            "group": group.name[:200],
            "status": group.status.value,
            "alerts": len(group.alerts),
            "receiver": notification.receiver[:100],
        }
        row = entry(ALERTMANAGER, "alert.received", outcome, target=group.id, params=params, service=self._service_of(group))
        record_quietly(self._d.audit, row)
        return received

    def _record(self, notification: Notification) -> Received:
        d = self._d
        now = d.clock.now()
        with d.uow() as uow:
            groups = uow.alert_groups
            group = groups.by_key_for_update(notification.group_key)
            if group is None:
                created = new_group(_new_id(), notification, now)
                groups.add(created)
                group = groups.by_key_for_update(notification.group_key)
                assert group is not None  # ours, or the one a concurrent first notification added
                if group.id == created.id:
                    self._show(uow, group)
                    uow.commit()
                    return Received(group, new_message=True, pending=_waiting(uow))
            updated, again = apply(group, notification, now)
            changed = again or _visible(updated) != _visible(group)
            groups.save(updated)
            if changed or (uow.outbox.posted(updated.message_key) is None and not uow.outbox.waiting(updated.message_key)):
                self._show(uow, updated)
            uow.commit()
            return Received(updated, new_message=again, changed=changed, pending=_waiting(uow))

    def _show(self, uow: AlertsUnitOfWork, group: AlertGroup) -> None:
        d = self._d
        message = AlertGroupMessage(group, d.config.alertmanager.silence_minutes, self._service_of(group) is not None)
        uow.outbox.post(d.config.channels.alerts, message, key=group.message_key, origin=group.origin)

    def _service_of(self, group: AlertGroup) -> str | None:
        name = group.label(self._d.config.alertmanager.service_label)
        return name if name in self._d.config.services else None

    def _group(self, group_id: str) -> AlertGroup:
        with self._d.uow() as uow:
            group = uow.alert_groups.get(group_id)
        if group is None:
            raise NotFound("alert group", group_id[:20])
        return group

    # ----- the buttons -----
    def declare(self, actor: Actor, group_id: str) -> Reply:
        """ "Declare incident": the incident declare form, pre-filled from the group's labels and annotations."""
        group = self._group(group_id)
        am = self._d.config.alertmanager
        return self._d.incidents.declarations.open_form(
            actor,
            severity_hint=am.incident_severity(group.label(am.severity_label)),
            title=group.annotation("summary") or group.name,
            service=group.label(am.service_label),
            impact=group.annotation("description"),
        )

    def silence(self, actor: Actor, group_id: str) -> Reply:
        """ "Silence 1h": a silence in Alertmanager on the group's labels, for ``alertmanager.silence_minutes``.

        The clicker's role (deployer) is checked here; one silence per group at a time (a second click while it
        lasts is a Conflict). Raises ``Unavailable`` naming Alertmanager when it cannot be reached (nothing changed).
        """
        d = self._d
        d.policy.require(actor, SILENCE_ROLE, "alert silence")
        now = d.clock.now()
        until = now + timedelta(minutes=d.config.alertmanager.silence_minutes)
        with d.uow() as uow:
            # The row stays locked during Alertmanager's answer: two quick clicks make one silence, not two.
            group = uow.alert_groups.get_for_update(group_id)
            if group is None:
                raise NotFound("alert group", group_id[:20])
            if group.silence is not None and group.silence.until > now:
                raise Conflict(f"<@{group.silence.by}> already silenced *{group.name}* until {group.silence.until:%H:%M} UTC.")
            matchers = group.matchers()
            if not matchers:
                raise Conflict("This alert group has no labels to match, so opsbot cannot silence just it; use Alertmanager.")
            comment = f"Silenced from Slack through opsbot: {group.name} ({group.id})"
            silence_id = d.silences.create(SilenceRequest(matchers, now, until, actor.user_id, comment[:MAX_REASON]))
            silenced = replace(group, silence=Silence(silence_id, actor.user_id, until))
            uow.alert_groups.save(silenced)
            self._show(uow, silenced)
            uow.commit()
        params = {"silence": silence_id, "matchers": matchers, "until": until.isoformat(), "group": group.name[:200]}
        record_quietly(
            d.audit,
            entry(actor, "alert.silenced", target=group.id, params=params, service=self._service_of(group)),
        )
        return Reply(Silenced(silenced, silence_id, until, matchers))

    def roll_back(self, actor: Actor, group_id: str) -> Reply:
        """ "Roll back": the rollback request for the last deploy of the group's ``service`` label, in its
        ``environment`` label's environment (the deploys family's rules, approvals and lock)."""
        d = self._d
        d.policy.require(actor, Role.DEPLOYER, "rollback")
        group = self._group(group_id)
        am = d.config.alertmanager
        service = group.label(am.service_label)
        if service is None:
            raise Conflict(
                f"The alerts of *{group.name}* share no `{am.service_label}` label, so there is no service to roll back. "
                'Use `/ops rollback <service> <env> --reason "…"`.'
            )
        state = "firing" if group.status is GroupStatus.FIRING else "resolved"
        reason = f"Alertmanager: {group.name} {state} ({group.id})"
        return d.deploys.rollbacks.request(actor, service, group.label(am.environment_label), None, reason[:MAX_REASON])


def _visible(group: AlertGroup) -> tuple[object, ...]:
    """What the message shows; a repeat notification that changes none of it edits nothing."""
    return (group.status, group.episode, group.alerts, group.common_annotations, group.truncated_alerts, group.silence)


def _waiting(uow: AlertsUnitOfWork) -> list[str]:
    return [f"{p.kind} {p.key}: {p.reason}" for p in uow.pending]

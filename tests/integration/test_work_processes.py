"""The hand-over to work processes (bot/work_processes.py), on the parts a killed `opsbot serve` test cannot reach:
where a command runs when no work process is ready, and what the user and the audit log get for a lost click or a
command whose text is hostile. The whole path, with a real work process killed, is in tests/e2e/test_http_server.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest
from slack_bolt.lazy_listener.runner import LazyListenerRunner

from bot.console import payloads
from bot.console.slack_emulator import SlackEmulator
from bot.domain.shared.ports import SystemClock
from bot.settings import Settings
from bot.work_processes import Handover, WorkProcesses
from tests.fakes import FakeAudit
from tests.support import make_config


class Recorder(LazyListenerRunner):
    def __init__(self) -> None:
        self.started: list[tuple[Callable[..., None], BoltRequest]] = []

    def start(self, function: Callable[..., None], request: BoltRequest) -> None:
        self.started.append((function, request))


def work_processes(audit: FakeAudit | None = None) -> tuple[WorkProcesses, Recorder]:
    app = App(signing_secret="s", token="xoxb-test", token_verification_enabled=False, request_verification_enabled=False)
    here = Recorder()
    app.listener_runner.lazy_listener_runner = here
    work = WorkProcesses(Settings(slack_signing_secret="s"), 1, config=make_config(), audit=audit)  # type: ignore[arg-type]
    work.install(app)
    assert app.listener_runner.lazy_listener_runner is work
    return work, here


def test_with_no_work_process_ready_the_command_runs_in_the_worker() -> None:
    work, here = work_processes()  # never started: none is ready, as in the seconds after gunicorn boots

    def handle_ops(**_: Any) -> None: ...

    request = BoltRequest(body="command=%2Fops&text=help", headers={})
    work.start(handle_ops, request)
    assert here.started == [(handle_ops, request)]


def lost(work: WorkProcesses, body: str, why: str) -> None:
    work._tell_lost(Handover(1, lambda **_: None, BoltRequest(body=body, headers={}), sent=True), why)


def test_a_lost_click_is_told_to_its_clicker_and_audited(emulator: SlackEmulator) -> None:
    audit = FakeAudit(SystemClock())
    work, _ = work_processes(audit)
    url = emulator.response_url("C0OPS", "U0APPROVER3", "1700000000.000100")
    body = payloads.block_action(
        user_id="U0APPROVER3",
        channel_id="C0OPS",
        message_ts="1700000000.000100",
        action={
            "type": "button",
            "action_id": "approval.approve",
            "value": "a-1",
            "text": {"type": "plain_text", "text": "Approve"},
        },
        response_url=url,
    )
    lost(work, body, "its work process ended: signal 9")
    [call] = emulator.responses(url)
    sent = call.args
    assert sent["response_type"] == "ephemeral" and sent["replace_original"] is False
    assert sent["text"].startswith(
        "⚠️ opsbot stopped part-way through your click on “Approve” (its work process ended: signal 9)."
    )
    assert "may have been partly applied" in sent["text"]
    [entry] = audit.entries
    assert (entry.actor, entry.action, entry.outcome, entry.channel) == ("U0APPROVER3", "work.lost", "error", "C0OPS")
    assert entry.params == {"request": "click: Approve"} and entry.request_id == "1.1.local"
    assert entry.error == "stopped part-way: its work process ended: signal 9"


def test_a_lost_command_is_quoted_escaped_and_the_audit_failing_does_not_stop_the_reply(emulator: SlackEmulator) -> None:
    audit = FakeAudit(SystemClock())
    audit.down = True  # the database may be what failed
    work, _ = work_processes(audit)
    url = emulator.response_url("C0OPS", "U0DEV")
    body = payloads.slash_command("deploy <!channel> *v1* to production", user_id="U0DEV", channel_id="C0OPS", response_url=url)
    lost(work, body, "its work process ended: exit code 1")
    [call] = emulator.responses(url)
    sent = call.args
    assert "(its work process ended: exit code 1)" in sent["text"]
    assert "<!channel>" not in sent["text"] and "&lt;!channel&gt;" in sent["text"]
    assert audit.entries == []

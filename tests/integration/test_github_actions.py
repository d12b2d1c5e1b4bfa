"""The `github_actions` provider against a local GitHub that answers as GitHub does (tests/github_double.py).

The dispatch answers 204 with no run id; the run is listed only after a delay, newest first, a page at a time; it goes
queued → in_progress → completed; rate limits answer 403/429 with GitHub's headers. The provider must find *its* run
by the correlation id in the run's title, respect the limits, cancel the run when the deploy is stopped, and say what
to fix when GitHub refuses the dispatch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.adapters.deploy_providers.github_actions import GithubActionsDeploy
from bot.config import GithubActionsProvider, OpsConfig, parse_config
from bot.console.slack_emulator import SlackEmulator
from bot.domain.deploys.model import DeployKind, DeployOrder, ProviderResult, StopSignal
from tests.deploy_kit import ServiceDouble, deploy_config_data, services_double, state_dir  # noqa: F401 - fixtures
from tests.e2e.test_deploys import posted
from tests.github_double import GithubDouble, Run, Workflow
from tests.support import Bot, eventually

TOKEN = "ghp_s3cr3tT0kenValue"
TOKEN_ENV = "OPSBOT_TEST_GITHUB_TOKEN"
RUN_NAME = "Deploy ${{ inputs.version }} to ${{ inputs.environment }} [${{ inputs.opsbot_run_id }}]"
DECLARED = {"version": {"required": True}, "environment": {"required": True}, "opsbot_run_id": {"required": False}}


def order(deploy_id: str = "d-1a2b3c4d", version: str = "v1.2.3") -> DeployOrder:
    return DeployOrder(deploy_id, DeployKind.DEPLOY, "api", "production", version, "U0DEV", "release", "v1.2.2")


def workflow(**changes: Any) -> Workflow:
    return Workflow(**{"inputs": dict(DECLARED), "run_name": RUN_NAME, **changes})


@pytest.fixture
def github() -> Iterator[GithubDouble]:
    server = GithubDouble(token=TOKEN, workflows=[workflow()]).start()
    yield server
    server.stop()


def provider(server: GithubDouble, timeout: int = 20, **changes: Any) -> GithubActionsDeploy:
    spec = GithubActionsProvider(
        **{
            "type": "github_actions",
            "repo": "example/api",
            "workflow": "deploy.yml",
            "ref": "main",
            "api_url": server.base_url,
            "inputs": {"version": "{version}", "environment": "{environment}"},
            "poll_seconds": 0.05,
            "timeout_seconds": timeout,
            **changes,
        }
    )
    return GithubActionsDeploy(spec, {"GITHUB_TOKEN": TOKEN})


def the_run(server: GithubDouble, deploy_id: str) -> Run:
    [run] = [r for r in server.dispatched() if r.inputs.get("opsbot_run_id") == deploy_id]
    return run


# ----- finding its run -----


def test_a_204_dispatch_is_followed_to_its_own_run_found_by_the_id_in_its_run_name(github: GithubDouble) -> None:
    stop = StopSignal()
    result = provider(github).deploy(order(), stop)
    run = the_run(github, "d-1a2b3c4d")
    assert result == ProviderResult(True, f"workflow run #{run.run_number} succeeded", link=run_url(run))
    assert run.display_title == "Deploy v1.2.3 to production [d-1a2b3c4d]"
    assert stop.link == run_url(run)  # told to the deploy as soon as the run was found
    assert [r.status for r in github.requests if r.path.endswith("/dispatches")] == [204] and len(github.runs) == 1
    listing = [r for r in github.requests if r.path.endswith("/runs")]
    assert listing and all(r.query["event"] == "workflow_dispatch" and r.query["created"].startswith(">=") for r in listing)
    assert github.statuses[run.id][-1] == "completed" and "in_progress" in github.statuses[run.id]


def run_url(run: Run) -> str:
    return f"https://github.com/example/api/actions/runs/{run.id}"


def test_two_dispatches_at_once_each_follow_their_own_run(github: GithubDouble) -> None:
    github.conclude = lambda run: "failure" if run.inputs.get("version") == "v2.0.0" else "success"
    github.add_run(event="workflow_dispatch", display_title="Deploy by hand", after=0.1)  # someone else's, in between
    results: dict[str, ProviderResult] = {}
    start = threading.Barrier(2)

    def deploy(deploy_id: str, version: str) -> None:
        start.wait()
        results[deploy_id] = provider(github).deploy(order(deploy_id, version), StopSignal())

    threads = [threading.Thread(target=deploy, args=args) for args in (("d-aaaa1111", "v1.0.0"), ("d-bbbb2222", "v2.0.0"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first, second = the_run(github, "d-aaaa1111"), the_run(github, "d-bbbb2222")
    assert results["d-aaaa1111"] == ProviderResult(True, f"workflow run #{first.run_number} succeeded", link=run_url(first))
    assert results["d-bbbb2222"].link == run_url(second) and not results["d-bbbb2222"].ok
    assert "conclusion failure" in results["d-bbbb2222"].summary


def test_its_run_is_found_on_a_later_page_through_the_link_header() -> None:
    # Ours is created 0.2 s after its dispatch but listed only 2 s later (GitHub's lists lag); 25 runs dispatched by
    # others are created a second after they are added (after ours, however slow the machine: newer, so listed first).
    server = GithubDouble(token=TOKEN, workflows=[workflow()], max_per_page=10, appear_after=0.2, list_delay=2.0).start()
    try:
        for i in range(25):
            server.add_run(event="workflow_dispatch", display_title=f"Deploy by hand {i}", after=1.0)
        result = provider(server).deploy(order(), StopSignal())
    finally:
        server.stop()
    run = the_run(server, "d-1a2b3c4d")
    assert result.ok and result.link == run_url(run)
    assert {r.query.get("page") for r in server.requests if r.path.endswith("/runs")} >= {"2", "3"}


def test_with_run_details_the_dispatch_names_the_run_and_nothing_is_listed() -> None:
    server = GithubDouble(token=TOKEN, workflows=[workflow()], run_details=True, appear_after=0).start()
    try:
        result = provider(server).deploy(order(), StopSignal())
    finally:
        server.stop()
    assert result.ok and result.link == run_url(the_run(server, "d-1a2b3c4d"))
    assert not [r for r in server.requests if r.path.endswith("/runs")]


def test_a_run_name_without_the_correlation_id_fails_saying_what_to_add() -> None:
    server = GithubDouble(token=TOKEN, workflows=[workflow(run_name="Deploy ${{ inputs.version }}")]).start()
    try:
        result = provider(server, timeout=2).deploy(order(), StopSignal())
    finally:
        server.stop()
    assert not result.ok
    assert result.summary == (
        "workflow `deploy.yml` of example/api was dispatched but no run titled with `d-1a2b3c4d` appeared within 2s: "
        "does its `run-name:` include `${{ inputs.opsbot_run_id }}`? (docs/deploys.md)"
    )


def test_without_a_correlation_input_the_oldest_dispatched_run_since_the_dispatch_is_followed() -> None:
    inputs = {"version": {"required": True}, "environment": {"required": True}}
    server = GithubDouble(token=TOKEN, workflows=[workflow(inputs=inputs, run_name=None)]).start()
    try:
        result = provider(server, correlation_input=None).deploy(order(), StopSignal())
    finally:
        server.stop()
    [run] = server.dispatched()
    assert run.inputs == {"version": "v1.2.3", "environment": "production"} and run.display_title == "Deploy"
    assert result == ProviderResult(True, f"workflow run #{run.run_number} succeeded", link=run_url(run))


def test_a_dispatch_whose_answer_was_lost_is_not_sent_again_and_its_run_is_found(github: GithubDouble) -> None:
    github.dispatch_faults = ["lost"]  # GitHub started the run; the answer never came
    result = provider(github).deploy(order(), StopSignal())
    run = the_run(github, "d-1a2b3c4d")
    assert result == ProviderResult(True, f"workflow run #{run.run_number} succeeded", link=run_url(run))
    assert len([r for r in github.requests if r.path.endswith("/dispatches")]) == 1 and len(github.runs) == 1


def test_a_dispatch_answered_502_that_started_nothing_fails_after_looking_and_is_not_sent_again(
    github: GithubDouble,
) -> None:
    github.dispatch_faults = ["502"]
    result = provider(github, timeout=2).deploy(order(), StopSignal())
    assert not result.ok and github.runs == []
    assert result.summary == (
        "GitHub answered HTTP 502 to the dispatch and no run of workflow `deploy.yml` of example/api titled with "
        "`d-1a2b3c4d` appeared within 2s: it was most likely not dispatched; deploy again"
    )
    assert len([r for r in github.requests if r.path.endswith("/dispatches")]) == 1


def test_github_unreachable_is_said_after_a_few_tries() -> None:
    spec = GithubActionsProvider(type="github_actions", repo="example/api", workflow="deploy.yml", api_url="http://127.0.0.1:1")
    result = GithubActionsDeploy(spec, {"GITHUB_TOKEN": TOKEN}).deploy(order(), StopSignal())
    assert result == ProviderResult(
        False, "could not reach GitHub to dispatch workflow `deploy.yml` of example/api (ConnectError)"
    )


# ----- how runs end -----


@pytest.mark.parametrize(
    ("conclusion", "why"),
    [
        ("failure", "a job failed"),
        ("cancelled", "the run was cancelled on GitHub"),
        ("timed_out", "a job ran past its timeout-minutes"),
        ("action_required", "it waits for someone to approve it on GitHub"),
        ("startup_failure", "the workflow could not start (check the workflow file)"),
    ],
)
def test_a_run_concluding_other_than_success_fails_the_deploy_naming_the_conclusion(
    github: GithubDouble, conclusion: str, why: str
) -> None:
    github.conclusion = conclusion
    result = provider(github).deploy(order(), StopSignal())
    run = the_run(github, "d-1a2b3c4d")
    assert result == ProviderResult(
        False, f"workflow run #{run.run_number} failed: conclusion {conclusion} ({why})", link=run_url(run)
    )


def test_a_run_still_going_at_the_timeout_is_cancelled_and_fails_with_its_link() -> None:
    server = GithubDouble(token=TOKEN, workflows=[workflow()], appear_after=0.1, running_for=60).start()
    try:
        result = provider(server, timeout=2).deploy(order(), StopSignal())
    finally:
        server.stop()
    run = the_run(server, "d-1a2b3c4d")  # like a command past its timeout, the run is stopped
    assert not result.ok and result.summary == f"workflow run #{run.run_number} still in_progress after 2s; GitHub cancelled it"
    assert result.link == run_url(run) and server.cancels == [run.id]


# ----- stopping: lock lost, /ops cancel, worker handing over -----


def deploy_in_background(github: GithubDouble, stop: StopSignal) -> tuple[threading.Thread, dict[str, ProviderResult]]:
    out: dict[str, ProviderResult] = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", provider(github).deploy(order(), stop)))
    thread.start()
    return thread, out


def test_a_deploy_that_loses_its_lock_cancels_its_run_and_waits_for_github_to_confirm(github: GithubDouble) -> None:
    github.running_for = 60
    stop = StopSignal()
    thread, out = deploy_in_background(github, stop)
    eventually(lambda: "in_progress" in github.statuses.get(the_run(github, "d-1a2b3c4d").id, []) if github.runs else False)
    stop.stop("its deploy lock was broken or ran out")
    thread.join(20)
    run = the_run(github, "d-1a2b3c4d")
    assert github.cancels == [run.id]
    assert out["result"] == ProviderResult(
        False,
        f"workflow run #{run.run_number} was stopped (its deploy lock was broken or ran out); GitHub cancelled it",
        link=run_url(run),
    )


def test_a_deploy_stopped_before_its_run_is_listed_still_finds_and_cancels_it() -> None:
    server = GithubDouble(token=TOKEN, workflows=[workflow()], appear_after=1.0, running_for=60).start()
    try:
        stop = StopSignal()
        thread, out = deploy_in_background(server, stop)
        eventually(lambda: bool(server.runs))  # dispatched, not listed yet
        stop.stop("cancelled by <@U0DEV>")
        thread.join(20)
    finally:
        server.stop()
    run = the_run(server, "d-1a2b3c4d")
    assert server.cancels == [run.id]
    assert "was stopped (cancelled by <@U0DEV>); GitHub cancelled it" in out["result"].summary


def test_a_run_handed_over_to_the_reconciler_is_left_running(github: GithubDouble) -> None:
    github.running_for = 60
    stop = StopSignal()
    thread, out = deploy_in_background(github, stop)
    eventually(lambda: bool(github.statuses))
    stop.stop("the worker shut down", cancel_remote=False)
    thread.join(20)
    run = the_run(github, "d-1a2b3c4d")
    assert github.cancels == [] and out["result"].summary == f"workflow run #{run.run_number} left running (the worker shut down)"


def test_a_deploy_stopped_before_the_dispatch_dispatches_nothing(github: GithubDouble) -> None:
    stop = StopSignal()
    stop.stop("cancelled by <@U0DEV>")
    result = provider(github).deploy(order(), stop)
    assert not result.ok and result.summary == (
        "stopped before workflow `deploy.yml` of example/api was dispatched (cancelled by <@U0DEV>)"
    )
    assert github.requests == []


# ----- rate limits -----


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_rate_limit_is_waited_out_for_its_retry_after(github: GithubDouble, status: int) -> None:
    github.secondary(1, retry_after=1, status=status)  # the dispatch itself is limited: GitHub did nothing
    result = provider(github).deploy(order(), StopSignal())
    assert result.ok and len(github.dispatched()) == 1
    limited, retried = github.requests[0], github.requests[1]
    assert limited.status == status and retried.path == limited.path and retried.status == 204
    assert retried.at - limited.at >= 1.0  # not before Retry-After


def test_a_spent_primary_rate_limit_is_waited_out_until_its_reset(github: GithubDouble) -> None:
    github.exhaust(2)
    result = provider(github).deploy(order(), StopSignal())
    assert result.ok
    refused = [r for r in github.requests if r.status == 403]
    assert len(refused) == 1  # one refusal, then quiet until x-ratelimit-reset
    after = github.requests[github.requests.index(refused[0]) + 1]
    assert int(after.wall) >= int(refused[0].wall) + 1 and after.status == 204


def test_an_answer_that_spends_the_last_request_makes_the_next_wait_for_the_reset() -> None:
    server = GithubDouble(token=TOKEN, workflows=[workflow()], rate_limit=2, window=2, appear_after=0).start()
    try:
        result = provider(server).deploy(order(), StopSignal())
    finally:
        server.stop()
    assert result.ok
    assert len(server.requests) > 2  # more requests than the limit allows in one window
    assert [r.status for r in server.requests if r.status in (403, 429)] == []  # it never ran into the limit


def test_a_rate_limit_longer_than_the_timeout_fails_at_once_saying_so(github: GithubDouble) -> None:
    github.exhaust(600)
    result = provider(github, timeout=30).deploy(order(), StopSignal())
    assert not result.ok and len(github.requests) == 1 and github.runs == []
    assert result.summary.startswith("GitHub's primary rate limit asks opsbot to wait ")
    assert result.summary.endswith("s, past the deploy's timeout")


# ----- GitHub refusing the dispatch -----


def refused(server: GithubDouble, **changes: Any) -> str:
    result = provider(server, **changes).deploy(order(), StopSignal())
    assert not result.ok and server.runs == [] and TOKEN not in result.summary
    return result.summary


def test_an_unknown_workflow_is_a_404_naming_repo_and_workflow(github: GithubDouble) -> None:
    assert refused(github, workflow="deploy-prod.yml") == (
        "GitHub found no workflow `deploy-prod.yml` of example/api (HTTP 404): check `repo` and `workflow` (the file "
        "name under .github/workflows, or its id), and that the token in GITHUB_TOKEN can see the repository"
    )


def test_an_unknown_ref_is_a_422_naming_the_ref(github: GithubDouble) -> None:
    assert refused(github, ref="release") == (
        "example/api has no branch or tag `release` (HTTP 422: No ref found for: release): check `ref`"
    )


def test_a_workflow_not_declaring_the_correlation_input_says_how_to_declare_it() -> None:
    inputs = {"version": {"required": True}, "environment": {"required": True}}
    server = GithubDouble(token=TOKEN, workflows=[workflow(inputs=inputs, run_name=None)]).start()
    try:
        summary = refused(server)
    finally:
        server.stop()
    assert summary == (
        "workflow `deploy.yml` of example/api does not declare every input opsbot sends (HTTP 422: Unexpected inputs "
        'provided: ["opsbot_run_id"]): declare them under `on: workflow_dispatch: inputs:` or remove them from '
        "`inputs`; `opsbot_run_id` carries opsbot's run id: declare it and use it in the workflow's `run-name:` "
        "(docs/deploys.md), or set `correlation_input: null`"
    )


def test_an_undeclared_configured_input_is_named(github: GithubDouble) -> None:
    summary = refused(github, inputs={"version": "{version}", "environment": "{environment}", "region": "eu"})
    assert 'Unexpected inputs provided: ["region"]' in summary and "correlation_input" not in summary


def test_a_bad_token_is_a_401_naming_the_variable_never_the_token() -> None:
    server = GithubDouble(token="ghp_the_right_one", workflows=[workflow()]).start()
    try:
        summary = refused(server)
    finally:
        server.stop()
    assert summary == ("GitHub refused the token in GITHUB_TOKEN (HTTP 401: Bad credentials): set GITHUB_TOKEN to a valid token")


def test_a_token_without_actions_permission_is_a_403_not_taken_for_a_rate_limit(github: GithubDouble) -> None:
    github.forbidden = True
    summary = refused(github)
    assert summary.startswith("the token in GITHUB_TOKEN may not dispatch workflow `deploy.yml` of example/api (HTTP 403")
    assert "Actions read and write" in summary and len(github.requests) == 1


def test_a_workflow_without_a_dispatch_trigger_says_to_add_it() -> None:
    server = GithubDouble(token=TOKEN, workflows=[workflow(dispatchable=False)]).start()
    try:
        summary = refused(server)
    finally:
        server.stop()
    assert summary.endswith("add `on: workflow_dispatch` to it")


def test_without_a_token_nothing_is_sent(github: GithubDouble) -> None:
    spec = provider(github)._spec
    result = GithubActionsDeploy(spec, {}).deploy(order(), StopSignal())
    assert not result.ok and "set the environment variable GITHUB_TOKEN" in result.summary and github.requests == []


def test_describe_shows_the_inputs_with_the_correlation_id(github: GithubDouble) -> None:
    assert provider(github).describe(order()) == (
        "dispatches workflow `deploy.yml` of example/api on `main` "
        "(version=v1.2.3, environment=production, opsbot_run_id=d-1a2b3c4d) and follows the run"
    )


# ----- through the app: announcements, /ops cancel, a broken lock -----


class TestThroughTheApp:
    """`/ops deploy` of a service deployed by GitHub Actions, through Bolt, PostgreSQL, Redis and the Slack emulator."""

    @pytest.fixture
    def github(self, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GithubDouble]:
        monkeypatch.setenv(TOKEN_ENV, TOKEN)
        server = GithubDouble(token=TOKEN, workflows=[workflow()], appear_after=0.2).start()

        def deployed(run: Run) -> None:  # what the workflow would do: the service now reports the version
            if run.conclusion == "success":
                (state_dir / f"api-{run.inputs['environment']}.version").write_text(run.inputs["version"])

        server.on_complete = deployed
        yield server
        server.stop()

    @pytest.fixture
    def config(self, state_dir: Path, services_double: ServiceDouble, github: GithubDouble) -> OpsConfig:
        data = deploy_config_data(state_dir, services_double.base_url)
        data["services"]["api"]["deploy"] = {
            "type": "github_actions",
            "repo": "example/api",
            "workflow": "deploy.yml",
            "token_env": TOKEN_ENV,
            "api_url": github.base_url,
            "inputs": {"version": "{version}", "environment": "{environment}"},
            "poll_seconds": 0.05,
            "timeout_seconds": 60,
        }
        return parse_config(data, "test")

    @pytest.fixture
    def app(self, emulator: SlackEmulator, pg_url: str, redis_client: redis.Redis, redis_prefix: str, config: OpsConfig) -> Bot:
        return Bot(emulator=emulator, db_url=pg_url, redis_client=redis_client, prefix=redis_prefix, config=config)

    def test_the_run_link_is_added_to_the_start_announcement_and_shown_in_the_outcome(
        self, app: Bot, github: GithubDouble
    ) -> None:
        app.command("deploy v2.0.0 to staging")
        done = posted(app, "✅ Deployment of v2.0.0 to staging completed")
        deploy_id = app.reads.deploys.history("api", "staging", 1)[0].id  # type: ignore[union-attr]
        run = the_run(github, deploy_id)
        shown = f"<{run_url(run)}|Provider run>"
        assert shown in done.all_text() and f"workflow run #{run.run_number} succeeded" in done.seen()
        assert "reporting v2.0.0" in done.seen()  # verified against the service after the run
        started = posted(app, "🚀 Starting deployment of v2.0.0 to staging")
        assert started.edits >= 1 and shown in started.all_text()  # edited once the run was found
        assert f"opsbot_run_id={deploy_id}" in started.seen()

    def test_cancelling_a_running_deploy_cancels_its_workflow_run(self, app: Bot, github: GithubDouble) -> None:
        github.running_for = 120
        app.command("deploy v2.0.0 to staging", user="U0DEV")
        deploy_id = app.reads.deploys.history("api", "staging", 1)[0].id  # type: ignore[union-attr]
        eventually(lambda: any(r.inputs.get("opsbot_run_id") == deploy_id for r in github.runs) and bool(github.statuses))
        app.command(f"cancel {deploy_id}", user="U0DEV")
        stopped = posted(app, "was stopped by @U0DEV", timeout=20)
        run = the_run(github, deploy_id)
        assert github.cancels == [run.id]
        assert "GitHub cancelled it" in stopped.seen() and f"<{run_url(run)}|Provider run>" in stopped.all_text()
        assert app.reads.deploys.get(deploy_id).state.value == "cancelled"  # type: ignore[union-attr]

    def test_a_deploy_whose_lock_is_broken_cancels_its_workflow_run(self, app: Bot, github: GithubDouble) -> None:
        github.running_for = 120
        app.command("deploy v2.0.0 to staging", user="U0DEV")
        deploy_id = app.reads.deploys.history("api", "staging", 1)[0].id  # type: ignore[union-attr]
        eventually(lambda: bool(github.statuses))
        app.command('unlock api staging --reason "stuck"', user="U0ADMIN")
        lost = posted(app, "lost its deploy lock while it ran", timeout=20)
        run = the_run(github, deploy_id)
        assert github.cancels == [run.id]
        assert "was stopped (its deploy lock was broken or ran out); GitHub cancelled it" in lost.seen()
        assert f"<{run_url(run)}|Provider run>" in lost.all_text()
        assert app.reads.deploys.get(deploy_id).state.value == "lock_lost"  # type: ignore[union-attr]

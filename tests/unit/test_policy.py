"""Roles from the config: direct listings, user groups, wildcard, and roles implied by stronger ones."""

from __future__ import annotations

import pytest

from bot.domain.shared.errors import NotPermitted, Unavailable
from bot.domain.shared.policy import Actor, Policy, Role


class FakeGroups:
    def __init__(self, groups: dict[str, set[str]], broken: bool = False) -> None:
        self.groups = groups
        self.broken = broken
        self.lookups = 0

    def members(self, group_id: str, max_age_seconds: float | None = None) -> frozenset[str]:
        self.lookups += 1
        if self.broken:
            raise Unavailable("Slack", "usergroups.users.list: ratelimited")
        return frozenset(self.groups.get(group_id, set()))

    def forget(self, group_id: str) -> None:
        pass


ROLES = {"admin": ["U0ADMIN"], "approver": ["S0SRE"], "deployer": ["U0DEV", "S0SRE"], "viewer": []}


def test_admin_holds_every_role() -> None:
    policy = Policy(ROLES, FakeGroups({}))
    assert policy.roles_of("U0ADMIN") == set(Role)


def test_group_members_get_the_group_roles_and_viewer() -> None:
    policy = Policy(ROLES, FakeGroups({"S0SRE": {"U0BOB"}}))
    assert policy.roles_of("U0BOB") == {Role.APPROVER, Role.DEPLOYER, Role.VIEWER}


def test_a_user_in_no_list_has_no_role_and_the_denial_names_the_role() -> None:
    policy = Policy(ROLES, FakeGroups({"S0SRE": {"U0BOB"}}))
    assert policy.roles_of("U0NOBODY") == set()
    with pytest.raises(NotPermitted, match=r"`unlock` needs the \*admin\* role"):
        policy.require(Actor("U0NOBODY"), Role.ADMIN, "unlock")


def test_wildcard_grants_the_role_to_everyone() -> None:
    policy = Policy({**ROLES, "viewer": ["*"]}, FakeGroups({}))
    assert policy.has("U0ANYONE", Role.VIEWER) and not policy.has("U0ANYONE", Role.DEPLOYER)


def test_direct_listing_needs_no_slack_lookup() -> None:
    groups = FakeGroups({}, broken=True)
    assert Policy(ROLES, groups).has("U0DEV", Role.DEPLOYER)
    assert groups.lookups == 0


def test_unreachable_group_lookup_is_an_unavailable_error_not_a_silent_no() -> None:
    with pytest.raises(Unavailable, match="Slack"):
        Policy(ROLES, FakeGroups({}, broken=True)).has("U0BOB", Role.APPROVER)


BY_ENV = {"production": {"deployer": ["S0SRE"], "admin": ["U0CTO"]}, "staging": {"deployer": ["U0DEV", "U0INTERN"]}}


def test_an_environment_that_sets_a_role_replaces_its_list_there_and_only_there() -> None:
    policy = Policy(ROLES, FakeGroups({"S0SRE": {"U0BOB"}}), BY_ENV)
    assert policy.has("U0DEV", Role.DEPLOYER) and not policy.has("U0DEV", Role.DEPLOYER, environment="production")
    assert policy.has("U0BOB", Role.DEPLOYER, environment="production")
    assert policy.has("U0INTERN", Role.DEPLOYER, environment="staging") and not policy.has("U0INTERN", Role.DEPLOYER)
    assert policy.has("U0BOB", Role.APPROVER, environment="production")  # production does not set approvers
    assert not policy.has("U0ADMIN", Role.DEPLOYER, environment="production")  # nor is the global admin an admin there
    assert policy.has("U0CTO", Role.DEPLOYER, environment="production")  # its own admin is
    assert policy.has("U0DEV", Role.DEPLOYER, environment="qa")  # an environment without roles of its own


def test_the_gate_before_the_environment_is_known_lets_through_anyone_who_holds_the_role_somewhere() -> None:
    policy = Policy(ROLES, FakeGroups({}), BY_ENV)
    policy.require_somewhere(Actor("U0INTERN"), Role.DEPLOYER, "deploy")
    with pytest.raises(NotPermitted, match=r"`deploy` needs the \*deployer\* role in production\."):
        policy.require(Actor("U0INTERN"), Role.DEPLOYER, "deploy", environment="production")
    with pytest.raises(NotPermitted):
        policy.require_somewhere(Actor("U0NOBODY"), Role.DEPLOYER, "deploy")
    assert policy.where("U0DEV", Role.DEPLOYER) == (["staging"], ["production"])
    assert policy.principals(Role.DEPLOYER, "production") == ["S0SRE"] and policy.principals(Role.APPROVER, "staging") == [
        "S0SRE"
    ]

"""The health family keeps the layering: the domain imports no transport, HTTP, Redis or template library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "bot" / "domain"
FORBIDDEN = {"slack_bolt", "slack_sdk", "jinja2", "httpx", "redis", "rq", "sqlalchemy"}
HEALTH_MODULES = ["health/service.py", "health/judge.py", "health/watches.py", "health/rules.py"]


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", HEALTH_MODULES)
def test_health_domain_modules_import_no_adapter_library(module: str) -> None:
    assert imported(DOMAIN / module) & FORBIDDEN == set()

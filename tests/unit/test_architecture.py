"""Imports point inward: the domain knows nothing of Slack, HTTP, Redis or templates."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"slack_bolt", "slack_sdk", "jinja2", "httpx", "redis", "sqlalchemy", "rq", "fakeredis", "handlers"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module.startswith("bot.") and not node.module.startswith(("bot.domain", "bot.config")):
                names.add(node.module)
    return names


def test_domain_imports_no_transport_storage_or_template_library() -> None:
    offenders = {}
    for path in sorted((ROOT / "bot" / "domain").rglob("*.py")):
        bad = {m for m in imported_modules(path) if m in FORBIDDEN or m.startswith("bot.")}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_the_domain_scan_would_catch_an_offender(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import redis\nfrom slack_sdk import WebClient\nfrom bot.adapters.sql.engine import metadata\n")
    assert {"redis", "slack_sdk", "bot.adapters.sql.engine"} <= imported_modules(sample)

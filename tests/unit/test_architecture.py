"""The house keeps its shape: import-linter's contracts in pyproject.toml hold (docs/architecture.md).

The contracts: the domain imports no transport, storage, HTTP, template or YAML library; the app's layers
point one way; families import only families below them, and only their public modules; no import cycles.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lint_imports() -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    return subprocess.run(
        [command, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_every_import_contract_is_kept() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_contracts_cover_the_rules_the_house_relies_on() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for rule in (
        "The domain imports no transport",
        "Layers of the app",
        "Families, top to bottom",
        "No import cycles",
        "locks family's public modules",
        "deploys family's public modules",
        "incidents family's public modules",
    ):
        assert rule in text, rule

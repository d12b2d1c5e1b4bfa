"""Which packages the wheel ships: every package under ``bot`` and ``handlers``, found, plus the templates.

Only this lives here; everything else is in pyproject.toml. ``[tool.setuptools.packages.find]``
would find ``bot*`` and ``handlers*`` (PEP 420 ones like ``bot.adapters`` included), but it finds
packages by directory name, so it cannot also ship ``templates/`` under its import name
``opsbot_templates`` (the ``package-dir`` mapping), and ``packages`` takes either a list or a find
directive, not both. A hand-written list is what left ``bot.domain.incidents`` out of the wheel.
"""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["bot", "bot.*", "handlers", "handlers.*"]), "opsbot_templates"])

"""Rewrites the README settings table from deploy/settings.py (python -m deploy.readme_settings)."""

from __future__ import annotations

from deploy.cli import settings_table
from deploy.settings import REPO_ROOT

START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def main() -> None:
    path = REPO_ROOT / "README.md"
    readme = path.read_text()
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}")


if __name__ == "__main__":
    main()

"""The README documents every setting and the commands CI runs."""

from __future__ import annotations

from deploy.cli import settings_table
from deploy.settings import REPO_ROOT


def test_readme_settings_table_is_current():
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("<!-- settings:start -->") + len("<!-- settings:start -->")
    end = readme.index("<!-- settings:end -->")
    assert readme[start:end].strip() == settings_table(), (
        "README settings table is stale: regenerate it with `python -m deploy.readme_settings`"
    )


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "bash deploy/test.sh" in readme
    assert "bash deploy/test.sh" in ci.splitlines()

"""The documentation site says what the code does: every setting, metric and command in its
references, every page in its navigation, the screenshots the browser tests make on its pages,
and a README that stays a front door. (`mkdocs build --strict`, in .ci/run, checks the links.)"""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import markdown
import pytest

from service.cli import main
from service.metrics import Metrics
from service.settings import Settings
from tests.support.docs import (
    CLI_PAGE,
    DOCS,
    README,
    ROOT,
    SETTINGS_PAGE,
    documentation,
    nav_pages,
    pages,
    table_variables,
    variables,
)

SETTINGS = {f"RECORDINGS_{name.upper()}" for name in Settings.model_fields}


def test_the_settings_reference_has_a_row_for_every_setting() -> None:
    rows = table_variables(SETTINGS_PAGE.read_text())
    missing = sorted(SETTINGS - set(rows))
    assert not missing, f"{SETTINGS_PAGE.name} has no row for {missing}"
    repeated = sorted({row for row in rows if rows.count(row) > 1})
    assert not repeated, f"{SETTINGS_PAGE.name} lists {repeated} more than once"


def test_the_settings_reference_names_no_setting_that_does_not_exist() -> None:
    unknown = sorted(variables(SETTINGS_PAGE.read_text()) - SETTINGS)
    assert not unknown, f"{SETTINGS_PAGE.name} names {unknown}, which Settings does not have"


def test_the_variable_checks_see_a_missing_row_and_a_made_up_name() -> None:
    page = "| `RECORDINGS_S3_BUCKET` | `recordings` | bucket |\nsee `RECORDINGS_S3_BUCKETS`\n"
    assert table_variables(page) == ["RECORDINGS_S3_BUCKET"]
    assert variables(page) - SETTINGS == {"RECORDINGS_S3_BUCKETS"}


def test_the_metrics_page_names_every_metric() -> None:
    page = (DOCS / "operations" / "metrics.md").read_text()
    names = {family.name for family in Metrics().registry.collect()}
    assert len(names) > 10
    missing = sorted(n for n in names if f"`{n}" not in page)
    assert not missing, f"metrics.md does not name {missing}"


def commands(
    command: click.Command, path: tuple[str, ...] = ("recordings",)
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from commands(sub, (*path, name))


@pytest.fixture(scope="module")
def cli_reference() -> str:
    """The CLI page as the site renders it, with the reference generated from the commands."""
    return markdown.markdown(CLI_PAGE.read_text(), extensions=["attr_list", "mkdocs-click"])


def test_the_cli_reference_is_generated_from_the_root_command(cli_reference: str) -> None:
    assert ":module: service.cli" in CLI_PAGE.read_text()
    assert "::: mkdocs-click" not in cli_reference
    # The table style prints click 8.3's unset defaults as "Sentinel.UNSET"; --help's text does not.
    assert "Sentinel" not in cli_reference


def test_the_cli_reference_has_every_command_and_option(cli_reference: str) -> None:
    found = list(commands(main))
    assert len(found) > 10 and ("recordings", "accounts", "rotate-token") in dict(found)
    for path, command in found:
        assert f'id="{"-".join(path)}"' in cli_reference, f"no section for {' '.join(path)}"
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt in cli_reference, f"{' '.join(path)} {opt} is not documented"


def test_every_page_is_in_the_navigation_and_every_entry_is_a_page() -> None:
    on_disk = {str(p.relative_to(DOCS)) for p in pages()}
    listed = list(nav_pages())
    assert len(listed) == len(set(listed)), "a page is listed twice"
    assert on_disk == set(listed)


def test_the_pages_section_20_names_are_all_there() -> None:
    for name in [
        "getting-started.md",
        "api-2008.md",
        "api-2010.md",
        "ingest.md",
        "leaving-twilio.md",
        "credentials.md",
        "encryption.md",
        "pages.md",
        "operations/cli.md",
        "operations/settings.md",
        "operations/metrics.md",
        "operations/retention.md",
        "operations/backups.md",
        "deployment/compose.md",
        "deployment/kubernetes.md",
        "database.md",
        "container-image.md",
        "channels-and-conferences.md",
        "performance.md",
        "reliability.md",
        "architecture.md",
    ]:
        assert (DOCS / name).is_file(), name


def test_the_screenshots_the_browser_tests_make_are_shown_in_the_site() -> None:
    made: set[str] = set()
    for module in (ROOT / "tests" / "system").glob("test_*browser*.py"):
        made |= set(re.findall(r'screenshot\(page, tmp_path, "([^"]+\.png)"\)', module.read_text()))
    stored = {p.name for p in (DOCS / "screenshots").glob("*.png")}
    assert made and made == stored
    site = "\n".join(page.read_text() for page in pages())
    for name in made:
        assert f"](screenshots/{name})" in site, f"{name} is shown on no page"


def test_the_readme_is_a_front_door() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert '.venv/bin/pip install -e ".[dev]" && .venv/bin/recordings dev' in text
    assert "\nbash .ci/run\n" in text
    assert "curl " in text and "from twilio.rest import Client" in text
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", text)
    assert len(links) > 15
    for link in links:
        assert (ROOT / link).is_file(), f"README links to {link}, which does not exist"


def test_every_command_is_documented_somewhere() -> None:
    text = documentation()
    for path, _ in commands(main):
        assert " ".join(path) in text, f"{' '.join(path)} is documented nowhere"

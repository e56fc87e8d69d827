"""JOB_RETENTION_DAYS and JOB_RETENTION_CRON are checked when the settings
are read: a value that would crash a start, overflow at cleanup or leave
cleanup never running is the usual one-line refusal naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from digest import stack
from digest.settings import Settings
from tests.test_cli_database import digest

BAD_CRONS = ["bogus", "61 * * * *", "17 * * *", "0 17 * * * *", "0 0 31 2 *", ""]
BAD_DAYS = ["inf", "-inf", "nan", "1e8", "36501", "0", "-1"]


@pytest.mark.parametrize("cron", BAD_CRONS)
def test_a_cron_that_cannot_fire_is_refused(cron: str) -> None:
    with pytest.raises(ValidationError, match="job_retention_cron"):
        Settings(job_retention_cron=cron)


@pytest.mark.parametrize("days", BAD_DAYS)
def test_retention_days_out_of_range_are_refused(days: str) -> None:
    with pytest.raises(ValidationError, match="job_retention_days"):
        Settings(job_retention_days=days)  # type: ignore[arg-type]


def test_good_values_are_kept() -> None:
    settings = Settings(job_retention_days=0.5, job_retention_cron="*/5 * * * *")
    assert (settings.job_retention_days, settings.job_retention_cron) == (
        0.5,
        "*/5 * * * *",
    )
    assert Settings(job_retention_days=36500, job_retention_cron="@daily")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("JOB_RETENTION_CRON", "bogus", "five cron fields"),
        ("JOB_RETENTION_CRON", "61 * * * *", "'61 * * * *'"),
        ("JOB_RETENTION_CRON", "0 0 31 2 *", "never fires"),
        ("JOB_RETENTION_DAYS", "inf", "finite"),
        ("JOB_RETENTION_DAYS", "1e8", "36500"),
    ],
)
@pytest.mark.parametrize("command", [["config", "show"], ["serve"]])
def test_the_cli_refuses_in_one_line_naming_the_setting(
    tmp_path: Path, command: list[str], name: str, value: str, says: str
) -> None:
    if command == ["serve"]:
        command = [*command, "--port", str(stack.free_port())]
    done = digest(command, {name: value}, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"setting {name} is invalid: "), line
    assert says in line, line
    assert "Value error" not in line

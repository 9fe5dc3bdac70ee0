"""``advsig registry ...``: in-process through typer, plus one real process for the error line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from advsig.cli import app as cli_app
from advsig.cli.registry import registry_app
from advsig.registry.attribution import Verdict
from advsig.registry.names import default_actor

COMMANDS = [c.name for c in registry_app.registered_commands]


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    if not cli_app.app.registered_commands:
        cli_app._register()
    return CliRunner()


def invoke(runner: CliRunner, *args: str | Path):
    result = runner.invoke(cli_app.app, ["registry", *map(str, args)], terminal_width=200)
    return result


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_registry_help_has_an_example(runner: CliRunner, command: str | None):
    args = ["--help"] if command is None else [command, "--help"]
    result = invoke(runner, *args)
    assert result.exit_code == 0 and "Example" in result.output


def test_subcommands_are_the_documented_ones():
    assert sorted(COMMANDS) == sorted([
        "init", "add-owner", "assign-code", "list", "revoke", "attribute",
        "add-key", "keys", "revoke-key",
    ])  # fmt: skip


def test_owner_assign_list_revoke_roundtrip(runner: CliRunner, sqlite_url: str):
    db = ("--db", sqlite_url)
    assert invoke(runner, "init", *db).exit_code == 0
    added = invoke(runner, "add-owner", "acme", "--contact", "a@acme.example", *db)
    assert added.exit_code == 0 and f"by {default_actor()}" in added.stdout
    assigned = invoke(
        runner, "assign-code", "acme", "--model", "gen-v2", "--kit", "base", "--seed", "0",
        "--assigned-by", "alice", "--json", *db,
    )  # fmt: skip
    assert assigned.exit_code == 0, assigned.output
    a = json.loads(assigned.stdout)
    assert a["owner"] == "acme" and a["model"] == "gen-v2" and a["assigned_by"] == "alice"
    assert a["num_bits"] == 32 and a["min_distance"] == 8
    plain = invoke(runner, "assign-code", "acme", "--strategy", "bch", "--json", *db)
    assert plain.exit_code == 0, plain.output
    b = json.loads(plain.stdout)
    assert b["model"] is None and b["assigned_by"] == default_actor() and b["strategy"] == "bch"
    revoked = invoke(runner, "revoke", a["code"], "--kit", "base", "--revoked-by", "bob", *db)
    assert revoked.exit_code == 0 and "revoked by bob" in revoked.stdout

    (owner,) = [
        json.loads(line) for line in invoke(runner, "list", "--json", *db).stdout.splitlines()
    ]
    assert owner["name"] == "acme" and owner["contact"] == "a@acme.example"
    assert owner["created_by"] == default_actor()
    assert [(m["name"], m["created_by"]) for m in owner["models"]] == [("gen-v2", "alice")]
    got = [(c["code"], c["model"], c["status"], c["assigned_by"], c["revoked_by"])
           for c in owner["codes"]]  # fmt: skip
    assert got == [
        (a["code"], "gen-v2", "revoked", "alice", "bob"),
        (b["code"], None, "active", default_actor(), None),
    ]
    for c in owner["codes"]:
        assert datetime.fromisoformat(c["created_at"]).tzinfo is not None
    assert owner["codes"][0]["revoked_at"] >= owner["codes"][0]["created_at"]

    text = invoke(runner, "list", *db).stdout
    assert "model gen-v2" in text and "assigned" in text and "by alice" in text
    assert "revoked" in text and "by bob" in text
    other_kit = json.loads(invoke(runner, "list", "--kit", "other", "--json", *db).stdout)
    assert other_kit["name"] == "acme" and other_kit["codes"] == []
    missing = invoke(runner, "list", "--owner", "nobody", *db)
    assert missing.exit_code != 0 and "'nobody'" in str(missing.exception)


def test_bad_strategy_is_refused_by_the_cli(runner: CliRunner, sqlite_url: str):
    result = invoke(runner, "assign-code", "acme", "--strategy", "gray", "--db", sqlite_url)
    assert result.exit_code == 2 and "gray" in result.output


def test_keys_are_shown_once_and_listed_without_secret(runner: CliRunner, sqlite_url: str):
    made = invoke(runner, "add-key", "web", "--role", "admin", "--rate", "5", "--db", sqlite_url)
    assert made.exit_code == 0
    key = made.stdout.strip()
    assert key.startswith("advsig_")
    listed = invoke(runner, "keys", "--db", sqlite_url).stdout
    assert "web\tadmin\tactive\t5/min" in listed and key.split("_")[2] not in listed
    assert invoke(runner, "revoke-key", "web", "--db", sqlite_url).exit_code == 0
    assert "revoked" in invoke(runner, "keys", "--db", sqlite_url).stdout


def test_attribute_reports_a_verdict_per_image(
    runner: CliRunner, sqlite_url: str, tiny_kit_dir: Path, photo_folder: Path
):
    db = ("--db", sqlite_url)
    invoke(runner, "add-owner", "acme", *db)
    assert invoke(runner, "assign-code", "acme", "--kit", tiny_kit_dir, *db).exit_code == 0
    (photo_folder / "broken.png").write_bytes(b"not a png")
    result = invoke(
        runner, "attribute", photo_folder, "--kit", tiny_kit_dir, "--confidence", "0.5",
        "--json", *db,
    )  # fmt: skip
    assert result.exit_code == 1  # the broken file
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 5
    verdicts = {v.value for v in Verdict}
    detect_keys = {"path", "signed", "score", "p_value", "threshold", "fpr", "bits",
                   "bit_confidence", "error"}  # fmt: skip
    for row in rows:
        assert row.keys() == detect_keys | {"owner", "attribution", "c2pa", "recovered_manifest"}
        assert row["c2pa"] is None and row["recovered_manifest"] is None  # no manifests here
        if row["error"] is None:
            assert row["attribution"]["verdict"] in verdicts
            assert row["attribution"]["num_codes"] == 1
        else:
            assert row["owner"] is None and row["attribution"] is None
    assert [r["path"] for r in rows if r["error"]] == [str(photo_folder / "broken.png")]


def test_user_errors_are_one_line_and_exit_1(tmp_path: Path):
    env = {**os.environ, "ADVSIG_DB": str(tmp_path / "r.db"), "ADVSIG_DEBUG": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "advsig", "registry", "assign-code", "nobody", "--kit", "base"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: owner 'nobody' is not registered; add it with: advsig registry add-owner nobody"
    ]
    assert (tmp_path / "r.db").is_file()  # $ADVSIG_DB chose the database

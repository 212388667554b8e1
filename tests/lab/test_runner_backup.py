"""playbooks/backup.yml as AWX schedules it: through ansible-runner's Python API, from a
private data dir whose project is this checkout and whose inventory is the lab's (docs/awx.md).

The job runs on db2, the lab's backup host, and backs the cluster up (from the replica) into both
of its repositories on objects1; the test reads the job's status, rc and event stream, then
checks on db1 that pgBackRest holds a new backup.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml
from conftest import BIN, INVENTORY, ROOT, lab_host

ansible_runner = pytest.importorskip("ansible_runner", reason="ansible-runner is in pyproject.toml's ansible group")

pytestmark = pytest.mark.lab

REPORT = "Report what each repository received"


def backups_on_db1() -> set[str]:
    info = lab_host("db1").run("runuser -u postgres -- pgbackrest --stanza=main --output=json info")
    assert info.rc == 0, info.stderr
    return {backup["label"] for backup in json.loads(info.stdout)[0]["backup"]}


def test_backup_job_through_ansible_runner(tmp_path):
    data = tmp_path / "runner"
    (data / "env").mkdir(parents=True)
    (data / "project").symlink_to(ROOT, target_is_directory=True)
    envvars = {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".cache" / "collections"),
        "ANSIBLE_NOCOLOR": "1",
    }
    (data / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    (data / "env" / "extravars").write_text(json.dumps({"backup_type": "full"}))
    (data / "env" / "settings").write_text(yaml.safe_dump({"job_timeout": 900}))
    before = backups_on_db1()

    runner = ansible_runner.run(
        private_data_dir=str(data),
        playbook="playbooks/backup.yml",
        inventory=str(INVENTORY),
        limit="db2",
        envvars={"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"},
        quiet=True,
    )
    stdout = runner.stdout.read()
    assert (runner.status, runner.rc) == ("successful", 0), stdout[-3000:]
    assert runner.stats["failures"] == {} and "db2" in runner.stats["ok"], runner.stats

    reports = [
        e["event_data"]
        for e in runner.events
        if e.get("event") == "runner_on_ok"
        and e.get("event_data", {}).get("host") == "db2"
        and e["event_data"].get("task", "").endswith(REPORT)
    ]
    assert reports, stdout[-3000:]
    assert reports[0]["role"] == "pgbackrest"

    after = backups_on_db1()
    assert after - before, f"no new backup: {sorted(after)}"
    artifacts = data / "artifacts" / runner.config.ident
    assert (artifacts / "rc").read_text() == "0" and (artifacts / "status").read_text() == "successful"

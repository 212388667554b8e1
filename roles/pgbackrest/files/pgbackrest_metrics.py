"""Write pgBackRest's last successful backups as node_exporter textfile metrics.

Reads `pgbackrest info --output=json` for one stanza and writes, per repository and backup
type, the completion time, database size and bytes stored in the repository of the newest
backup, plus the repository's status. The file is written atomically (a temporary file in
the same directory, then a rename; Contract 4 of docs/architecture.md). Run as root by the
backup unit (ExecStartPost) or by hand:

    python3 /usr/local/lib/pgbackrest-metrics.py --stanza main \
        --output /var/lib/prometheus/node-exporter/pgbackrest.prom

No shebang: it is run by python3 (Debian's), not executed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HELP = {
    "pgbackrest_info_success": ("gauge", "1 when pgbackrest info answered for the stanza."),
    "pgbackrest_repo_status_code": (
        "gauge",
        "pgBackRest status code of the stanza in the repository (0 ok, 2 no backup).",
    ),
    "pgbackrest_backups": ("gauge", "Backups of the stanza held in the repository, per type."),
    "pgbackrest_backup_last_success_timestamp_seconds": (
        "gauge",
        "Completion time of the newest successful backup, per repository and type.",
    ),
    "pgbackrest_backup_last_duration_seconds": ("gauge", "Duration of the newest successful backup."),
    "pgbackrest_backup_last_size_bytes": ("gauge", "Database size of the newest successful backup."),
    "pgbackrest_backup_last_repo_bytes": (
        "gauge",
        "Bytes the newest successful backup added to the repository (compressed, encrypted).",
    ),
    "pgbackrest_metrics_timestamp_seconds": ("gauge", "When this file was written."),
}


def label_text(labels: dict[str, str]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{key}="{escape(str(value))}"' for key, value in labels.items())


def number_text(value: float) -> str:
    """Whole numbers (timestamps, bytes) in full, never in exponent notation."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def read_info(pgbackrest: str, stanza: str) -> list[dict] | None:
    run = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
        [
            pgbackrest,
            f"--stanza={stanza}",
            "--output=json",
            "--log-level-file=off",
            "--log-level-console=error",
            "info",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        sys.stderr.write(run.stderr)
        return None
    return json.loads(run.stdout)


def samples(stanza: str, info: list[dict] | None) -> list[tuple[str, dict[str, str], float]]:
    out: list[tuple[str, dict[str, str], float]] = []
    entry = next((item for item in info or [] if item.get("name") == stanza), None)
    out.append(("pgbackrest_info_success", {"stanza": stanza}, 1 if entry else 0))
    if entry is None:
        return out
    for repo in entry.get("repo", []):
        labels = {"stanza": stanza, "repo": str(repo["key"])}
        out.append(("pgbackrest_repo_status_code", labels, repo.get("status", {}).get("code", 99)))
    newest: dict[tuple[str, str], dict] = {}
    counts: dict[tuple[str, str], int] = {}
    for backup in entry.get("backup", []):
        if backup.get("error"):
            continue
        key = (str(backup["database"]["repo-key"]), backup["type"])
        counts[key] = counts.get(key, 0) + 1
        if key not in newest or backup["timestamp"]["stop"] >= newest[key]["timestamp"]["stop"]:
            newest[key] = backup
    for (repo, kind), backup in sorted(newest.items()):
        labels = {"stanza": stanza, "repo": repo, "type": kind}
        stamp = backup["timestamp"]
        out.append(("pgbackrest_backups", labels, counts[(repo, kind)]))
        out.append(("pgbackrest_backup_last_success_timestamp_seconds", labels, stamp["stop"]))
        out.append(("pgbackrest_backup_last_duration_seconds", labels, stamp["stop"] - stamp["start"]))
        out.append(("pgbackrest_backup_last_size_bytes", labels, backup["info"]["size"]))
        out.append(("pgbackrest_backup_last_repo_bytes", labels, backup["info"]["repository"]["delta"]))
    return out


def render(rows: list[tuple[str, dict[str, str], float]]) -> str:
    lines = []
    for name, (kind, text) in HELP.items():
        selected = [row for row in rows if row[0] == name]
        if not selected:
            continue
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{{{label_text(row[1])}}} {number_text(row[2])}" for row in selected]
    return "\n".join(lines) + "\n"


def write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".pgbackrest.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stanza", required=True)
    parser.add_argument("--output", default="/var/lib/prometheus/node-exporter/pgbackrest.prom")
    parser.add_argument("--pgbackrest", default="/usr/bin/pgbackrest")
    args = parser.parse_args()
    info = read_info(args.pgbackrest, args.stanza)
    rows = samples(args.stanza, info)
    rows.append(("pgbackrest_metrics_timestamp_seconds", {"stanza": args.stanza}, int(time.time())))
    write_atomically(args.output, render(rows))
    return 0 if info is not None else 1


if __name__ == "__main__":
    sys.exit(main())

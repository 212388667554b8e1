"""Real state of the pki role with defaults only: the host trusts the site CA, nothing else."""

import json
import os
import subprocess
from pathlib import Path

from recap import parse_recap

PKI = "/etc/corvid/pki"
CA_DIR = Path(__file__).parents[3] / ".cache" / "pki" / "molecule-pki_defaults"


def test_site_ca_made_on_the_controller_with_a_private_key():
    assert sorted(path.name for path in CA_DIR.iterdir()) == ["ca.crt", "ca.key"]
    assert (CA_DIR / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (
        "BEGIN EC PRIVATE KEY" in (CA_DIR / "ca.key").read_text()
        or "BEGIN PRIVATE KEY" in (CA_DIR / "ca.key").read_text()
    )


def test_ca_certificate_on_the_host(host):
    ca = host.file(f"{PKI}/ca.crt")
    assert (ca.user, ca.group, ca.mode) == ("root", "root", 0o644)
    assert ca.content_string == (CA_DIR / "ca.crt").read_text()
    text = host.check_output("openssl x509 -in %s/ca.crt -noout -text", PKI)
    assert "Subject: CN = corvid site CA" in text
    assert "CA:TRUE" in text
    assert "prime256v1" in text
    # About ten years (pki_ca_valid_days 3650): valid in 9 years, not in 11.
    assert host.run("openssl x509 -in %s/ca.crt -noout -checkend %s", PKI, str(9 * 365 * 86400)).rc == 0
    assert host.run("openssl x509 -in %s/ca.crt -noout -checkend %s", PKI, str(11 * 365 * 86400)).rc == 1


def test_system_store_trusts_the_site_ca(host):
    assert (
        host.file("/usr/local/share/ca-certificates/corvid-site-ca.crt").content_string
        == (CA_DIR / "ca.crt").read_text()
    )
    # No -CAfile: the self-signed CA verifies only if the system store holds it.
    run = host.run("openssl verify %s/ca.crt", PKI)
    assert run.rc == 0, run.stdout + run.stderr


def test_no_certificates_by_default(host):
    assert host.run("ls -A %s/private", PKI).stdout.strip() == ""
    assert host.run("ls %s", PKI).stdout.split() == ["ca.crt", "private"]


def test_check_mode_with_a_new_ca_and_a_new_certificate_changes_nothing(host, tmp_path):
    """--check with a CA directory that does not exist yet and a new certificate: it reports the
    changes, fails nothing, and neither the controller nor the host gets a file."""
    new_ca = tmp_path / "new-ca"
    variables = {
        "pki_ca_dir": str(new_ca),
        "pki_certificates": [{"name": "checked", "common_name": "checked.corvid.test"}],
    }
    run = subprocess.run(
        [
            "ansible-playbook",
            "--inventory",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "--check",
            "--extra-vars",
            json.dumps(variables),
            str(Path(__file__).parents[1] / "converge.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    (recap,) = parse_recap(run.stdout).values()
    assert recap["failed"] == 0 and recap["changed"] > 0, run.stdout[-3000:]
    assert not new_ca.exists()
    assert not host.file(f"{PKI}/private/checked.key").exists
    assert not host.file(f"{PKI}/checked.crt").exists
    assert host.file(f"{PKI}/ca.crt").content_string == (CA_DIR / "ca.crt").read_text()

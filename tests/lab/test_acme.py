"""The ACME path in the lab: edge1 gets a certificate from Pebble on acme1 (pki_ca: acme,
HTTP-01 through the edge's webroot on port 80), serves it on an extra site, and a second run
does not renew it. The lab goes back to the site CA afterwards (playbooks/site.yml)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request

import pytest
from conftest import ROOT, lab_host, run_playbook

pytestmark = pytest.mark.lab

CA_FILE = ROOT / ".cache" / "pki" / "lab" / "ca.crt"
PLAYBOOK = "lab/pebble/edge_acme.yml"
PKI = "/etc/corvid/pki"
PORT = 8444


def pebble_root() -> str:
    """Pebble's issuing root (new on every start of Pebble), from its management port; Pebble's
    own listener certificate comes from the lab's site CA."""
    context = ssl.create_default_context(cafile=str(CA_FILE))
    for _ in range(40):
        try:
            with urllib.request.urlopen("https://127.0.0.1:15000/roots/0", context=context, timeout=5) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.25)
    raise AssertionError("Pebble did not answer on 127.0.0.1:15000")


def served(host, *options: str) -> str:
    return host.run(
        "openssl s_client -connect 127.0.0.1:%s -servername edge1 " + " ".join(options) + " </dev/null 2>&1", str(PORT)
    ).stdout


def serial(host) -> str:
    return host.check_output("openssl x509 -in %s/edge-acme.crt -noout -serial", PKI)


def test_edge_serves_a_certificate_from_pebble_and_does_not_renew_it(tmp_path, monkeypatch):
    # The ACME modules run on this machine: they verify Pebble with the lab's site CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(CA_FILE))
    root = pebble_root()
    extra = tmp_path / "acme.json"
    extra.write_text(json.dumps({"pki_ca_dir": str(tmp_path / "acme"), "pki_ca_certificate": root}))
    edge = lab_host("edge1")
    try:
        run, recap = run_playbook(PLAYBOOK, "-e", f"@{extra}")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert recap["edge1"]["changed"] >= 1, run.stdout[-3000:]

        leaf = edge.check_output(
            "openssl s_client -connect 127.0.0.1:%s -servername edge1 </dev/null 2>/dev/null"
            " | openssl x509 -noout -issuer -ext subjectAltName",
            str(PORT),
        )
        assert "Pebble Intermediate CA" in leaf
        assert "DNS:edge1" in leaf
        # The chain the site serves verifies against Pebble's root alone, for the name edge1.
        edge.run("install -m 0644 /dev/null /tmp/pebble-root.crt")
        edge.run("cat > /tmp/pebble-root.crt <<'EOF'\n%s\nEOF" % root.strip())  # noqa: UP031 - a shell here-document
        verify = served(edge, "-CAfile /tmp/pebble-root.crt -no-CApath -no-CAstore -verify_hostname edge1")
        assert "Verify return code: 0 (ok)" in verify, verify[-2000:]
        # The HTTP-01 answers are gone (the nginx role keeps its own probe file there).
        answers = set(edge.check_output("ls -A /var/www/acme/.well-known/acme-challenge").split())
        assert answers <= {"acme-webroot.txt"}, answers

        before = serial(edge)
        run, recap = run_playbook(PLAYBOOK, "-e", f"@{extra}")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert recap["edge1"]["changed"] == 0, run.stdout[-3000:]
        assert serial(edge) == before
    finally:
        monkeypatch.delenv("SSL_CERT_FILE")
        edge.run("rm -f /tmp/pebble-root.crt %s/edge-acme.* %s/private/edge-acme.key", PKI, PKI)
        restore, _ = run_playbook("playbooks/site.yml", "--limit", "edge1")
    assert restore.returncode == 0, restore.stdout[-3000:] + restore.stderr[-2000:]
    # Back to the site CA: the extra site is gone and a converge reports no change.
    assert f":{PORT} " not in edge.check_output("ss -ltnH")
    run, recap = run_playbook("playbooks/site.yml", "--limit", "edge1")
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap["edge1"]["changed"] == 0, run.stdout[-3000:]

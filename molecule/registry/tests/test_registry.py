"""Real state of the registry scenario: Debian's docker-registry behind TLS 1.3 and htpasswd.

Passwords come from the scenario's inventory (molecule.yml); assertions compare statuses
and digests only, so a failure report does not print a password.
"""

import json
import subprocess
from pathlib import Path

import yaml

HOST = "m9a-registry"
PORT = 5000
CA = "/etc/corvid/pki/ca.crt"
HERE = Path(__file__).parent
INVENTORY = yaml.safe_load((HERE.parent / "molecule.yml").read_text())["provisioner"]["inventory"]
USERS = {u["name"]: u.get("password") for u in INVENTORY["group_vars"]["all"]["registry_users"]}

# GET /v2/ with the given basic auth (or none); prints the status code.
STATUS_PROBE = """
import base64, ssl, sys, urllib.error, urllib.request
context = ssl.create_default_context(cafile=sys.argv[1])
request = urllib.request.Request(sys.argv[3])
if sys.argv[2]:
    request.add_header("Authorization", "Basic " + base64.b64encode(sys.argv[2].encode()).decode())
try:
    print(urllib.request.urlopen(request, context=context, timeout=5).status)
except urllib.error.HTTPError as error:
    print(error.code, error.headers.get("WWW-Authenticate"))
"""


URL = f"https://localhost:{PORT}/v2/"


def on_host(script, *args):
    """Run a Python script on the registry host (stdin), return its stdout."""
    run = subprocess.run(
        ["docker", "exec", "-i", HOST, "python3", "-", *args],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_service_running_enabled_and_listening(host):
    service = host.service("docker-registry")
    assert service.is_running
    assert service.is_enabled
    assert host.socket(f"tcp://0.0.0.0:{PORT}").is_listening or host.socket(f"tcp://:::{PORT}").is_listening


def test_tls13_handshake_verified_against_the_site_ca(host):
    run = host.run(f"openssl s_client -connect 127.0.0.1:{PORT} -servername {HOST} -CAfile {CA} -tls1_3 </dev/null")
    assert "Protocol  : TLSv1.3" in run.stdout or "New, TLSv1.3" in run.stdout, run.stdout
    assert "Verify return code: 0 (ok)" in run.stdout


def test_tls12_refused(host):
    run = host.run(f"openssl s_client -connect 127.0.0.1:{PORT} -tls1_2 </dev/null")
    assert run.rc != 0
    assert "alert protocol version" in run.stdout + run.stderr


def test_unauthenticated_and_wrong_password_get_401():
    assert on_host(STATUS_PROBE, CA, "", URL) == '401 Basic realm="corvid registry"'
    assert on_host(STATUS_PROBE, CA, "push:not-the-password", URL).startswith("401")
    assert on_host(STATUS_PROBE, CA, "former:anything", URL).startswith("401")


def test_each_present_user_is_accepted():
    for name in ("push", "pull"):
        assert on_host(STATUS_PROBE, CA, f"{name}:{USERS[name]}", URL) == "200", name


def test_htpasswd_has_bcrypt_entries_for_present_users_only(host):
    htpasswd = host.file("/etc/docker/registry/htpasswd")
    assert (htpasswd.user, htpasswd.group, htpasswd.mode) == ("root", "docker-registry", 0o640)
    entries = dict(line.split(":", 1) for line in htpasswd.content_string.splitlines() if line)
    assert sorted(entries) == ["pull", "push"]
    assert all(value.startswith("$2") for value in entries.values())


def test_private_key_not_world_readable(host):
    key = host.file("/etc/corvid/pki/private/registry.key")
    assert key.group == "ssl-cert"
    assert key.mode & 0o007 == 0
    assert "ssl-cert" in host.user("docker-registry").groups


def test_push_then_pull_a_tiny_image():
    script = (HERE / "registry_client.py").read_text()
    result = json.loads(
        on_host(script, CA, f"https://localhost:{PORT}", f"push:{USERS['push']}", f"pull:{USERS['pull']}")
    )
    assert (result["layer_push"], result["config_push"], result["manifest_push"]) == (201, 201, 201), result
    assert result["manifest_pull"] == 200
    assert result["pulled_digest"] == result["pushed_digest"]
    assert result["layer_pull"] == 200
    assert result["layer_matches"] is True
    assert "v1" in result["tags"]


def test_config_check_rejects_a_broken_configuration(host):
    bad = host.run(
        "sed 's/minimumtls: tls1.3/minimumtls: tls9/' /etc/docker/registry/config.yml > /tmp/bad.yml"
        " && registry-config-check /tmp/bad.yml; echo rc=$?; rm -f /tmp/bad.yml"
    )
    assert "rc=1" in bad.stdout, bad.stdout
    good = host.run("registry-config-check /etc/docker/registry/config.yml")
    assert good.rc == 0, good.stdout + good.stderr

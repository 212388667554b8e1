"""Real state of the pki scenario: a site CA on the controller, certificates on Debian 12 and 13.

Everything is checked from outside the role: openssl on the hosts, the files in the CA
directory on the controller, and ansible-playbook runs of the scenario's converge with changed
variables (each test that changes the certificates converges again with its variables, so the
next test starts from a converged host).
"""

import ipaddress
import json
import os
import re
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import testinfra
import yaml

from recap import parse_recap

BOOKWORM = "corvid-pki-bookworm"
TRIXIE = "corvid-pki-trixie"
SCENARIO = Path(__file__).parents[1]
CA_DIR = SCENARIO.parents[1] / ".cache" / "pki" / "molecule-pki"
PKI = "/etc/corvid/pki"
INVENTORY = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]
# name -> (owner, group, mode, key type) of the certificates on each host.
EXPECTED = {
    BOOKWORM: {"service": ("root", "root", 0o600, "ecdsa")},
    TRIXIE: {"service": ("root", "root", 0o600, "ecdsa"), "web": ("root", "www-data", 0o640, "rsa")},
}


def name_of(host):
    return host.backend.get_hostname()


def sans_for(host_name, cert_name):
    entries = (
        INVENTORY["host_vars"]
        .get(host_name, {})
        .get("pki_certificates", INVENTORY["group_vars"]["all"]["pki_certificates"])
    )
    (entry,) = [entry for entry in entries if entry["name"] == cert_name]
    return {name.replace("{{ inventory_hostname }}", host_name) for name in entry["subject_alt_names"]}


def certificate_sans(host, path):
    """The SANs of a certificate on the host, as the names an inventory would write."""
    text = host.check_output("openssl x509 -in %s -noout -ext subjectAltName", path)
    names = set()
    for item in text.splitlines()[-1].split(","):
        kind, _, value = item.strip().partition(":")
        names.add(str(ipaddress.ip_address(value)) if kind == "IP Address" else value)
    return names


def serial(host, name):
    return host.check_output("openssl x509 -in %s/%s.crt -noout -serial", PKI, name)


def converge(*, extra_vars=None, limit=BOOKWORM, verbose=False):
    command = ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], "--limit", limit]
    if extra_vars:
        command += ["--extra-vars", json.dumps(extra_vars)]
    if verbose:
        command.append("-vvv")
    run = subprocess.run(
        [*command, str(SCENARIO / "converge.yml")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    return run, parse_recap(run.stdout)[limit]


def private_key_secrets(host, name):
    """What of a host key must not appear elsewhere: its PEM lines that are not part of its public
    key (an EC key's PEM ends with the public point, which the role may show) and the private
    value in hex. Read by the test, never by the role."""
    key = f"{PKI}/private/{name}.key"
    public = "".join(host.check_output("openssl pkey -in %s -pubout", key).splitlines())
    lines = [line for line in host.file(key).content_string.splitlines() if "-----" not in line]
    text = host.check_output("openssl pkey -in %s -noout -text", key)
    private_hex = re.search(r"^(?:priv|privateExponent):\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
    assert private_hex, text.splitlines()[0]
    hex_value = re.sub(r"[\s:]", "", private_hex.group(1))
    return [line for line in lines if line not in public], hex_value


def leaks(output, secrets):
    lines, hex_value = secrets
    flat = re.sub(r"[\s:]", "", output).lower()
    return [line for line in lines if line in output] + ([hex_value] if hex_value[-32:] in flat else [])


def test_private_keys_on_the_host_with_owner_and_mode(host):
    for name, (owner, group, mode, key_type) in EXPECTED[name_of(host)].items():
        key = host.file(f"{PKI}/private/{name}.key")
        assert (key.user, key.group, key.mode) == (owner, group, mode), name
        text = host.check_output("openssl pkey -in %s/private/%s.key -noout -text", PKI, name)
        if key_type == "ecdsa":
            assert "prime256v1" in text, text.splitlines()[0]
        else:
            assert "Private-Key: (2048 bit" in text, text.splitlines()[0]
    private = host.file(f"{PKI}/private")
    assert (private.user, private.group, private.mode) == ("root", "root", 0o711)


def test_certificates_verify_against_the_site_ca(host):
    for name in EXPECTED[name_of(host)]:
        run = host.run("openssl verify -CAfile %s/ca.crt %s/%s.crt", PKI, PKI, name)
        assert run.rc == 0 and run.stdout.strip().endswith(": OK"), run.stdout + run.stderr
        cert = host.file(f"{PKI}/{name}.crt")
        assert (cert.user, cert.mode) == ("root", 0o644)


def test_fullchain_is_the_leaf_then_the_ca(host):
    ca = host.file(f"{PKI}/ca.crt").content_string
    for name in EXPECTED[name_of(host)]:
        leaf = host.file(f"{PKI}/{name}.crt").content_string
        assert host.file(f"{PKI}/{name}.fullchain.crt").content_string == leaf + ca


def test_sans_and_common_name_match_the_inventory(host):
    for name in EXPECTED[name_of(host)]:
        assert certificate_sans(host, f"{PKI}/{name}.crt") == sans_for(name_of(host), name)
    subject = host.check_output("openssl x509 -in %s/service.crt -noout -subject -nameopt RFC2253", PKI)
    assert subject == f"subject=CN={name_of(host)}"


def test_ca_on_the_host_is_the_controllers(host):
    assert host.file(f"{PKI}/ca.crt").content_string == (CA_DIR / "ca.crt").read_text()
    assert (CA_DIR / "ca.key").stat().st_mode & 0o777 == 0o600
    assert CA_DIR.stat().st_mode & 0o777 == 0o700
    issuer = host.check_output("openssl x509 -in %s/ca.crt -noout -issuer -nameopt RFC2253", PKI)
    assert issuer == "issuer=CN=corvid molecule CA"


def test_system_store_trusts_the_site_ca(host):
    trusted = host.file("/usr/local/share/ca-certificates/corvid-site-ca.crt")
    assert trusted.content_string == host.file(f"{PKI}/ca.crt").content_string
    # No -CAfile: the system store (/etc/ssl/certs) alone.
    run = host.run("openssl verify %s/service.crt", PKI)
    assert run.rc == 0, run.stdout + run.stderr
    assert "corvid molecule CA" in host.check_output(
        "awk -v cmd='openssl x509 -noout -subject' "
        "'/BEGIN/{close(cmd)};{print | cmd}' "
        "/etc/ssl/certs/ca-certificates.crt"
    )


def test_tls_between_hosts_verifies_with_the_system_store(host):
    """A TLS server on Debian 12 with its certificate; each host's client verifies it by name."""
    if name_of(host) != TRIXIE:
        pytest.skip("the client runs on Debian 13, the server on Debian 12")
    server = testinfra.get_host(f"docker://{BOOKWORM}")
    server.run(
        "setsid timeout 60 openssl s_server -quiet -accept 8443 -cert %s/service.fullchain.crt"
        " -key %s/private/service.key -www >/dev/null 2>&1 < /dev/null &",
        PKI,
        PKI,
    )
    try:
        for client, name in ((host, BOOKWORM), (server, "localhost")):
            address = BOOKWORM if client is host else "127.0.0.1"
            run = client.run(
                "for i in 1 2 3 4 5 6 7 8 9 10; do echo Q | openssl s_client -connect %s:8443 -verify_return_error"
                " -verify_hostname %s >/tmp/s_client.out 2>&1 && break; sleep 0.5; done; cat /tmp/s_client.out",
                address,
                name,
            )
            assert "Verify return code: 0 (ok)" in run.stdout, run.stdout
    finally:
        server.run("pkill -f 'openssl s_server -quiet -accept 8443' || true")


def test_changed_san_renews_with_the_same_key_and_no_key_leaves_the_host(host):
    """A new SAN re-issues (new serial, same key); the -vvv output and the CA dir hold no host key."""
    if name_of(host) != BOOKWORM:
        pytest.skip("one host is enough")
    before = serial(host, "service")
    key_before = host.file(f"{PKI}/private/service.key").sha256sum
    changed = [
        {
            "name": "service",
            "common_name": BOOKWORM,
            "subject_alt_names": [BOOKWORM, "localhost", "127.0.0.1", "::1", "extra.corvid.test"],
        }
    ]
    run, recap = converge(extra_vars={"pki_certificates": changed}, verbose=True)
    assert recap["changed"] >= 1, run.stdout[-3000:]
    assert serial(host, "service") != before
    assert host.file(f"{PKI}/private/service.key").sha256sum == key_before
    assert "extra.corvid.test" in certificate_sans(host, f"{PKI}/service.crt")
    assert "signing requests" in run.stdout and "subject_alt_names changed" in run.stdout

    output = run.stdout + run.stderr
    assert "PRIVATE KEY" not in output
    secrets = private_key_secrets(host, "service")
    assert secrets[0] and not leaks(output, secrets)
    ca_key = [line for line in (CA_DIR / "ca.key").read_text().splitlines() if "-----" not in line]
    assert not any(line in output for line in ca_key[:1])
    assert sorted(path.name for path in CA_DIR.iterdir()) == ["ca.crt", "ca.key"]
    for path in CA_DIR.iterdir():
        assert not leaks(path.read_text(), secrets), path

    # The same variables again: nothing to do.
    _, recap = converge(extra_vars={"pki_certificates": changed})
    assert recap["changed"] == 0
    # Back to the inventory: the extra SAN goes, with a new certificate.
    renewed = serial(host, "service")
    converge()
    assert serial(host, "service") != renewed
    assert certificate_sans(host, f"{PKI}/service.crt") == sans_for(BOOKWORM, "service")


def test_renewal_margin_longer_than_the_remaining_life_renews(host):
    if name_of(host) != BOOKWORM:
        pytest.skip("one host is enough")
    before = serial(host, "service")
    # Certificates live 397 days: a 398-day margin makes the current one due (with a 400-day life
    # so the margin stays below it).
    longer = {"pki_renew_days": 398, "pki_certificate_valid_days": 400}
    _, recap = converge(extra_vars=longer)
    assert recap["changed"] >= 1
    assert serial(host, "service") != before
    end = host.check_output("openssl x509 -in %s/service.crt -noout -checkend %s && echo valid", PKI, str(399 * 86400))
    assert end.endswith("valid")
    # The new certificate outlives the margin: the next run changes nothing, nor does the inventory's.
    _, recap = converge(extra_vars=longer)
    assert recap["changed"] == 0
    _, recap = converge()
    assert recap["changed"] == 0


def make_provided_ca(directory):
    """A throwaway root and an intermediate that signs (openssl on the controller, test only)."""

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl(
        "req",
        "-x509",
        *curve,
        "-days",
        "30",
        "-subj",
        "/CN=Molecule Root",
        "-keyout",
        "root.key",
        "-out",
        "root.crt",
        *ca_ext,
    )
    openssl("req", *curve, "-subj", "/CN=Molecule Intermediate", "-keyout", "int.key", "-out", "int.csr")
    (directory / "int.ext").write_text(
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    openssl(
        "x509",
        "-req",
        "-in",
        "int.csr",
        "-CA",
        "root.crt",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        "int.ext",
        "-out",
        "int.crt",
    )
    return {
        "pki_ca": "provided",
        "pki_ca_certificate": (directory / "int.crt").read_text(),
        "pki_ca_chain": (directory / "root.crt").read_text(),
        "pki_ca_private_key": (directory / "int.key").read_text(),
    }


def test_provided_ca_with_a_chain_issues_and_back(host, tmp_path):
    """pki_ca: provided (an intermediate and its root) re-issues from it; the CA key stays out of the output."""
    if name_of(host) != BOOKWORM:
        pytest.skip("one host is enough")
    provided = make_provided_ca(tmp_path)
    run, recap = converge(extra_vars=provided, verbose=True)
    assert recap["changed"] >= 1
    assert "issued by another CA" in run.stdout
    ca_key_lines = [line for line in provided["pki_ca_private_key"].splitlines() if "-----" not in line]
    assert not any(line in run.stdout + run.stderr for line in ca_key_lines[:1])
    subject = host.check_output("openssl x509 -in %s/ca.crt -noout -subject -nameopt RFC2253", PKI)
    assert subject == "subject=CN=Molecule Root"
    chain = host.file(f"{PKI}/service.fullchain.crt").content_string
    assert (
        chain
        == host.file(f"{PKI}/service.crt").content_string + provided["pki_ca_certificate"] + provided["pki_ca_chain"]
    )
    # The system store holds the provided root: the leaf verifies with the intermediate from the chain file.
    verified = host.run("openssl verify -untrusted %s/service.fullchain.crt %s/service.crt", PKI, PKI)
    assert verified.rc == 0, verified.stdout + verified.stderr
    _, recap = converge(extra_vars=provided)
    assert recap["changed"] == 0
    # Back to the site CA of the inventory.
    _, recap = converge()
    assert recap["changed"] >= 1
    assert host.check_output("openssl verify -CAfile %s/ca.crt %s/service.crt", PKI, PKI).endswith(": OK")
    assert host.file(f"{PKI}/ca.crt").content_string == (CA_DIR / "ca.crt").read_text()


PEBBLE_SETUP = """
set -e
DEBIAN_FRONTEND=noninteractive apt-get install -y -q pebble >/dev/null
mkdir -p /etc/pebble /var/www/acme
ip=$(hostname -I | awk '{print $1}')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=pebble \\
  -addext "subjectAltName=IP:$ip" -keyout /etc/pebble/key.pem -out /etc/pebble/cert.pem 2>/dev/null
printf '%s' '{"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
  "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem", "httpPort": 5002,
  "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}' > /etc/pebble/config.json
systemd-run --unit corvid-test-pebble -E PEBBLE_VA_NOSLEEP=1 -E PEBBLE_WFE_NONCEREJECT=0 \\
  /usr/bin/pebble -config /etc/pebble/config.json >/dev/null 2>&1
systemd-run --unit corvid-test-webroot /usr/bin/python3 -m http.server 5002 --directory /var/www/acme >/dev/null 2>&1
echo "$ip"
"""


def pebble_root(address):
    """Pebble's root (random per start), from its management port: test TLS, not verified."""
    context = ssl._create_unverified_context()  # noqa: S323 - Pebble's throwaway test listener
    for _ in range(40):
        try:
            with urllib.request.urlopen(f"https://{address}:15000/roots/0", context=context, timeout=5) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"Pebble did not answer on {address}:15000")


def test_acme_from_pebble_with_http_01(host, tmp_path):
    """pki_ca: acme against Pebble on the host: HTTP-01 from the webroot, then no renewal on a second run."""
    if name_of(host) != TRIXIE:
        pytest.skip("Pebble runs on Debian 13 (its package there)")
    address = host.check_output("bash -c %s", PEBBLE_SETUP).splitlines()[-1]
    try:
        acme = {
            "pki_ca": "acme",
            "pki_ca_dir": str(tmp_path / "acme"),
            "pki_acme_directory": f"https://{address}:14000/dir",
            "pki_acme_terms_agreed": True,
            "pki_acme_validate_certs": False,
            "pki_ca_certificate": pebble_root(address),
            "pki_certificates": [{"name": "public", "common_name": TRIXIE}],
        }
        run, recap = converge(extra_vars=acme, limit=TRIXIE)
        assert recap["changed"] >= 1, run.stdout[-3000:]
        issuer = host.check_output("openssl x509 -in %s/public.crt -noout -issuer", PKI)
        assert "Pebble Intermediate CA" in issuer
        assert certificate_sans(host, f"{PKI}/public.crt") == {TRIXIE}
        # The system store now holds Pebble's root: the chain file verifies without -CAfile.
        verified = host.run("openssl verify -untrusted %s/public.fullchain.crt %s/public.crt", PKI, PKI)
        assert verified.rc == 0, verified.stdout + verified.stderr
        assert host.run("ls -A /var/www/acme/.well-known/acme-challenge").stdout.strip() == ""
        assert (tmp_path / "acme" / "acme-account.key").stat().st_mode & 0o777 == 0o600
        before = serial(host, "public")
        _, recap = converge(extra_vars=acme, limit=TRIXIE)
        assert recap["changed"] == 0
        assert serial(host, "public") == before
    finally:
        host.run(
            "systemctl stop corvid-test-pebble corvid-test-webroot; rm -f %s/public.* %s/private/public.key", PKI, PKI
        )
    _, recap = converge(limit=TRIXIE)
    assert host.file(f"{PKI}/ca.crt").content_string == (CA_DIR / "ca.crt").read_text()


def test_pki_issued_fact_names_the_paths(host, tmp_path):
    if name_of(host) != TRIXIE:
        pytest.skip("the host with two certificates")
    playbook = tmp_path / "issued.yml"
    playbook.write_text(
        "- name: Read pki_issued\n  hosts: all\n  roles:\n    - role: corvid.platform.pki\n"
        "  post_tasks:\n    - name: Show pki_issued\n      ansible.builtin.debug:\n        var: pki_issued\n"
    )
    run = subprocess.run(
        [
            "ansible-playbook",
            "--inventory",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "--limit",
            TRIXIE,
            # The inventory builds pki_ca_dir from playbook_dir, which is elsewhere here.
            "--extra-vars",
            json.dumps({"pki_ca_dir": str(CA_DIR)}),
            str(playbook),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    output = json.loads(run.stdout)
    issued = output["plays"][0]["tasks"][-1]["hosts"][TRIXIE]["pki_issued"]
    assert issued == {
        name: {
            "cert": f"{PKI}/{name}.crt",
            "fullchain": f"{PKI}/{name}.fullchain.crt",
            "key": f"{PKI}/private/{name}.key",
            "ca": f"{PKI}/ca.crt",
        }
        for name in ("service", "web")
    }
    assert output["stats"][TRIXIE]["changed"] == 0

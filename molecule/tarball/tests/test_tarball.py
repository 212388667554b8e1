"""Real state of the tarball scenario: node_exporter and Prometheus installed from release
tarballs served by the scenario's mirror, not from Debian's packages, serving TLS with basic
auth, and a wrong sha256 that fails the run before anything is replaced.

Requests go over https with the scenario's site CA, from inside m10t-mon (python3 there; no
curl in the images). Passwords are the scenario's throwaway test values.
"""

import json
import os
import subprocess
from pathlib import Path

import testinfra
import yaml

from recap import parse_recap

MON = "m10t-mon"
MIRROR = "m10t-mirror"
SCENARIO = Path(__file__).parents[1]
INVENTORY = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]
WEB = ("admin", INVENTORY["monitoring"]["prometheus_web_password"])
SCRAPE = ("prometheus", INVENTORY["monitoring"]["exporters_basic_auth_password"])
WRONG_SHA256 = "0" * 64

FETCH = r"""
import base64, json, ssl, sys, urllib.error, urllib.request
url, user, password = sys.argv[1:4]
context = ssl.create_default_context(cafile="/etc/corvid/pki/ca.crt")
request = urllib.request.Request(url)
if user:
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
try:
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        print(json.dumps({"status": answer.status, "body": answer.read().decode()}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "body": ""}))
"""


def host(name=MON):
    return testinfra.get_host(f"docker://{name}")


def fetch(url, auth=("", "")):
    run = host().run("python3 -c %s %s %s %s", FETCH, url, auth[0], auth[1])
    assert run.rc == 0, run.stderr
    return json.loads(run.stdout)


def releases():
    return json.loads(host(MIRROR).file("/srv/tarball-mirror/releases.json").content_string)


def main_pid(unit):
    return host().check_output("systemctl show -p MainPID --value %s", unit)


def test_services_run_the_binaries_of_the_tarballs_not_of_packages():
    mon = host()
    for name, unit, binary in (
        ("node_exporter", "prometheus-node-exporter", "node_exporter"),
        ("prometheus", "prometheus", "prometheus"),
    ):
        home = f"/opt/corvid/{name}-{releases()[name]['version']}.linux-amd64"
        link = mon.file(f"/usr/local/bin/{unit}")
        assert link.is_symlink and link.linked_to == f"{home}/{binary}"
        assert mon.file(f"/etc/systemd/system/{unit}.service").contains(f"ExecStart=/usr/local/bin/{unit} \\$ARGS")
        assert mon.service(unit).is_running and mon.service(unit).is_enabled
        assert mon.check_output("ps -o args= -p %s", main_pid(unit)).startswith(f"/usr/local/bin/{unit} ")
        assert not mon.package(unit).is_installed
    assert host().file("/usr/local/bin/promtool").linked_to.endswith(".linux-amd64/promtool")


def test_the_archives_kept_are_the_ones_the_mirror_publishes():
    mon = host()
    for name, release in releases().items():
        archive = f"/opt/corvid/archives/{name}-{release['version']}.linux-amd64.tar.gz"
        assert mon.check_output("sha256sum %s", archive).split()[0] == release["sha256"]


def test_node_exporter_serves_tls_with_basic_auth():
    assert fetch(f"https://{MON}:9100/metrics")["status"] == 401
    assert fetch(f"https://{MON}:9100/metrics", ("prometheus", "wrong-password"))["status"] == 401
    answer = fetch(f"https://{MON}:9100/metrics", SCRAPE)
    assert answer["status"] == 200 and "node_exporter_build_info" in answer["body"]


def test_prometheus_scrapes_itself_and_node_exporter_over_https():
    assert fetch(f"https://{MON}:9090/api/v1/targets")["status"] == 401

    def targets():
        answer = fetch(f"https://{MON}:9090/api/v1/targets?state=active", WEB)
        assert answer["status"] == 200
        return {
            (t["labels"]["job"], t["labels"]["instance"], t["scrapeUrl"].split(":")[0]): t["health"]
            for t in json.loads(answer["body"])["data"]["activeTargets"]
        }

    expected = {("prometheus", f"{MON}:9090", "https"): "up", ("node", f"{MON}:9100", "https"): "up"}
    seen = {}
    for _ in range(30):
        seen = targets()
        if seen == expected:
            break
        subprocess.run(["sleep", "2"], check=True)
    assert seen == expected


def test_prometheus_keeps_its_data_where_debians_package_does():
    assert host().file("/var/lib/prometheus/metrics2/wal").is_directory


def test_a_wrong_sha256_fails_before_anything_is_replaced():
    mon = host()
    release = releases()["node_exporter"]
    url = f"http://{MIRROR}:8000/node_exporter-{release['version']}.linux-amd64.tar.gz"
    before = {unit: main_pid(unit) for unit in ("prometheus-node-exporter", "prometheus")}
    link_before = mon.file("/usr/local/bin/prometheus-node-exporter").linked_to
    run = subprocess.run(
        [
            "ansible-playbook",
            "--inventory",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "--extra-vars",
            json.dumps({"exporters_node_tarball_sha256": WRONG_SHA256}),
            str(SCENARIO / "converge.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0, run.stdout[-3000:]
    assert f"exporters_node_tarball_sha256: the sha256 of {url} is {release['sha256']}, not {WRONG_SHA256}" in output, (
        output[-3000:]
    )
    assert "Nothing was replaced: prometheus-node-exporter keeps its installed version" in output, output[-3000:]
    assert parse_recap(run.stdout)[MON]["changed"] == 0, run.stdout[-3000:]
    assert {unit: main_pid(unit) for unit in before} == before
    assert mon.file("/usr/local/bin/prometheus-node-exporter").linked_to == link_before
    archive = f"/opt/corvid/archives/node_exporter-{release['version']}.linux-amd64.tar.gz"
    assert mon.check_output("sha256sum %s", archive).split()[0] == release["sha256"]
    assert fetch(f"https://{MON}:9100/metrics", SCRAPE)["status"] == 200

"""The lab's app tier as it runs: the agent service's containers on app1 and app2 (the docker
engine inside each app host), pulled from the site's own registry on registry1, behind the
edge (https://127.0.0.1:8443, Host edge1, the lab CA), writing to PostgreSQL on db1.

Each check reads the real state: `docker inspect` and `docker exec` inside the app hosts, the
app's own endpoints, the rows in db1 (read as postgres through `docker exec corvid-lab-db1`).
The helpers here are shared with test_deploy.py.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shlex
import ssl
import subprocess
import time
import uuid

import pytest
from conftest import BIN, INVENTORY, ROOT, lab_host

pytestmark = pytest.mark.lab

APP = "agent-service"
APP_HOSTS = ("app1", "app2")
COLOURS = ("blue", "green")
REGISTRY = "registry1:5000"
REPOSITORY = f"{REGISTRY}/corvid/agent-service"
STATE_FILE = f"/etc/corvid/apps/{APP}/state.json"
CA = ROOT / ".cache" / "pki" / "lab" / "ca.crt"
EDGE = ("127.0.0.1", 8443)
EDGE_HOST = "edge1"
# The container contract (app-tier design): ports of the blue colour; green adds 100.
API_PORT, WS_PORT, METRICS_PORT = 8000, 8080, 8001
OFFSETS = {"blue": 0, "green": 100}
APP_UID = "10001"
LOG_CAPS = {"max-size": "100m", "max-file": "5"}


# --------------------------------------------------------------------------------------------
# Helpers (also used by test_deploy.py)


def inventory_value(host: str, expression: str):
    """A Jinja expression evaluated for `host` of the lab inventory (vault included)."""
    run = subprocess.run(
        [
            BIN / "ansible",
            host,
            "-i",
            INVENTORY,
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"msg={{{{ {expression} | to_json }}}}",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
    )
    assert run.returncode == 0, f"could not evaluate {expression!r} for {host}: {run.stdout[-800:]}{run.stderr[-800:]}"
    return json.loads(json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"][host]["msg"])


def app_state(host: str) -> dict:
    """The app's state file on `host`: {"active": colour, "releases": {colour: tag}, "previous": tag}."""
    cat = lab_host(host).run(f"cat {STATE_FILE}")
    assert cat.rc == 0, f"{host}: expected the app's state file {STATE_FILE}, saw: {cat.stderr.strip()}"
    return json.loads(cat.stdout)


def active(host: str) -> tuple[str, str]:
    """(active colour, its release) on `host`."""
    state = app_state(host)
    return state["active"], state["releases"][state["active"]]


def container(host: str, colour: str) -> dict | None:
    """`docker inspect` of the app's container of `colour` on `host`, None when there is none."""
    run = lab_host(host).run(f"docker inspect {APP}-{colour}")
    return json.loads(run.stdout)[0] if run.rc == 0 else None


def containers(host: str) -> dict[str, dict]:
    """Every container of the app on `host` (running or not), by name."""
    names = lab_host(host).check_output(f"docker ps -a --filter name={APP}- --format '{{{{.Names}}}}'").split()
    found = {name: container(host, name.removeprefix(f"{APP}-")) for name in names if name.startswith(f"{APP}-")}
    return {name: inspected for name, inspected in found.items() if inspected}


def edge_request(method: str, path: str, body: dict | None = None) -> tuple[int, dict | str]:
    """One request through the edge as a client sends it; the answer's JSON (or text)."""
    context = ssl.create_default_context(cafile=str(CA))
    conn = http.client.HTTPSConnection(*EDGE, context=context, timeout=10)
    conn.request(
        method,
        path,
        body=json.dumps(body) if body is not None else None,
        headers={"Host": EDGE_HOST, "Content-Type": "application/json"},
    )
    # the certificate names edge1; the connection goes to the published 127.0.0.1:8443
    response = conn.getresponse()
    data = response.read().decode()
    conn.close()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, data


def db1_query(sql: str, **variables: str) -> str:
    """SQL as postgres on db1 in the app's database (ai_agent_sdk), rows as plain text;
    `variables` are psql variables (:'name' in the SQL)."""
    options = " ".join(f"-v {name}={shlex.quote(value)}" for name, value in variables.items())
    run = lab_host("db1").run(
        f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 {options} -d ai_agent_sdk -f - <<'SQL'\n" + sql + "\nSQL"
    )
    assert run.rc == 0, f"db1: expected the query to run, saw: {run.stderr.strip()} ({sql[:200]})"
    return run.stdout.strip()


def missing_items(ids: list[int]) -> list[int]:
    """Those of `ids` that have no row in db1's items table."""
    if not ids:
        return []
    out = db1_query(
        "SELECT x FROM unnest(:'ids'::bigint[]) AS x WHERE NOT EXISTS (SELECT 1 FROM items WHERE id = x) ORDER BY x",
        ids="{" + ",".join(str(item) for item in sorted(set(ids))) + "}",
    )
    return [int(line) for line in out.split()]


def on_host_http(host: str, port: int, path: str) -> tuple[int, str]:
    """GET http://127.0.0.1:PORT/PATH inside the app host (the containers use host networking)."""
    script = (
        "import http.client, json, sys\n"
        f"c = http.client.HTTPConnection('127.0.0.1', {port}, timeout=10)\n"
        f"c.request('GET', {path!r})\n"
        "r = c.getresponse()\n"
        "print(json.dumps([r.status, r.read().decode()]))\n"
    )
    run = host_python(host, script)
    assert run.rc == 0, f"{host}: expected an answer on 127.0.0.1:{port}{path}, saw: {run.stderr.strip()[-300:]}"
    status, body = json.loads(run.stdout)
    return status, body


def host_python(host: str, script: str):
    """Run a Python script with the app host's python3 (standard library)."""
    return lab_host(host).run("python3 - <<'PY'\n" + script + "\nPY")


def digest(value: str) -> str:
    """Secrets are compared by hash so that a failure message never shows them."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


@pytest.fixture(scope="module")
def lab_ready():
    if not CA.is_file():
        pytest.skip(f"{CA} is missing: the lab's site CA is made by `make lab`")


# --------------------------------------------------------------------------------------------
# The registry


@pytest.mark.parametrize("host", APP_HOSTS)
def test_the_running_image_was_pulled_from_registry1(host):
    colour, release = active(host)
    inspected = container(host, colour)
    assert inspected, f"{host}: expected the active container {APP}-{colour}, found none"
    assert inspected["Config"]["Image"] == f"{REPOSITORY}:{release}", (
        f"{host}: expected {APP}-{colour} to run {REPOSITORY}:{release}, it runs {inspected['Config']['Image']}"
    )
    image = json.loads(lab_host(host).check_output(f"docker image inspect {inspected['Image']}"))[0]
    assert any(name.startswith(f"{REPOSITORY}@sha256:") for name in image["RepoDigests"]), (
        f"{host}: expected a digest from {REGISTRY} (the image was pulled from it), saw {image['RepoDigests']}"
    )


@pytest.mark.parametrize("host", APP_HOSTS)
def test_app_hosts_trust_registry1_over_tls_with_the_site_ca(host):
    ca = lab_host(host).file(f"/etc/docker/certs.d/{REGISTRY}/ca.crt")
    assert ca.exists, f"{host}: expected /etc/docker/certs.d/{REGISTRY}/ca.crt (the lab CA), found none"
    assert ca.content_string.strip() == CA.read_text().strip(), f"{host}: the registry CA is not the lab's site CA"
    insecure = lab_host(host).check_output("docker info --format '{{json .RegistryConfig.IndexConfigs}}'")
    configs = json.loads(insecure)
    assert REGISTRY not in configs or configs[REGISTRY]["Secure"], (
        f"{host}: expected {REGISTRY} to be a secure (TLS) registry, saw {configs.get(REGISTRY)}"
    )


@pytest.mark.parametrize("host", APP_HOSTS)
def test_an_unauthenticated_pull_from_registry1_is_refused(host):
    """A docker client without the host's login (an empty DOCKER_CONFIG) must be refused."""
    _, release = active(host)
    run = lab_host(host).run(
        f"d=$(mktemp -d) && DOCKER_CONFIG=$d timeout 60 docker pull {REPOSITORY}:{release}; rc=$?; rm -rf $d; exit $rc"
    )
    said = (run.stdout + run.stderr).lower()
    assert run.rc != 0, f"{host}: expected an anonymous pull of {REPOSITORY}:{release} to be refused; it worked"
    assert "unauthorized" in said or "no basic auth credentials" in said, (
        f"{host}: expected the registry to refuse for lack of credentials, saw: {said.strip()[-400:]}"
    )
    assert "x509" not in said and "certificate" not in said, f"{host}: expected TLS to verify, saw: {said[-400:]}"


# --------------------------------------------------------------------------------------------
# The containers


@pytest.mark.parametrize("host", APP_HOSTS)
def test_only_the_active_colour_runs_and_it_is_healthy(host):
    colour, _ = active(host)
    found = containers(host)
    running = {name for name, c in found.items() if c and c["State"]["Running"]}
    assert running == {f"{APP}-{colour}"}, f"{host}: expected only {APP}-{colour} running, saw {sorted(running)}"
    state = found[f"{APP}-{colour}"]["State"]
    assert state.get("Health", {}).get("Status") == "healthy", f"{host}: expected a healthy container, saw {state}"
    assert state["Restarting"] is False and state["OOMKilled"] is False, state


@pytest.mark.parametrize("host", APP_HOSTS)
def test_containers_are_non_root_read_only_and_limited(host):
    colour, _ = active(host)
    inspected = container(host, colour)
    config, host_config = inspected["Config"], inspected["HostConfig"]
    user = config["User"].split(":")[0]
    assert user and user not in ("0", "root"), f"{host}: expected a non-root user, the container has {config['User']!r}"
    uid = lab_host(host).check_output(f"docker exec {APP}-{colour} id -u")
    assert uid == APP_UID, f"{host}: expected the app to run as uid {APP_UID}, it runs as {uid}"
    assert host_config["ReadonlyRootfs"] is True, f"{host}: expected a read-only root filesystem"
    assert "/tmp" in (host_config.get("Tmpfs") or {}), (
        f"{host}: expected a tmpfs on /tmp, saw {host_config.get('Tmpfs')}"
    )
    write = lab_host(host).run(f"docker exec {APP}-{colour} touch /written-by-a-test")
    assert write.rc != 0 and "read-only" in write.stderr.lower(), f"{host}: expected / to refuse writes: {write}"
    assert lab_host(host).run(f"docker exec {APP}-{colour} touch /tmp/written-by-a-test").rc == 0
    assert host_config["Memory"] > 0, f"{host}: expected a memory limit, saw {host_config['Memory']}"
    assert host_config["NanoCpus"] > 0 or host_config["CpuQuota"] > 0, f"{host}: expected a CPU limit"
    assert "ALL" in (host_config.get("CapDrop") or []), f"{host}: expected every capability dropped"
    security = host_config.get("SecurityOpt") or []
    assert any(opt.startswith("no-new-privileges") for opt in security), (
        f"{host}: expected no-new-privileges, saw {security}"
    )
    assert host_config["NetworkMode"] == "host", f"{host}: expected host networking, saw {host_config['NetworkMode']}"
    assert host_config["RestartPolicy"]["Name"] in ("always", "unless-stopped", "on-failure"), host_config[
        "RestartPolicy"
    ]


@pytest.mark.parametrize("host", APP_HOSTS)
def test_logs_are_json_files_capped_at_100m_times_5(host):
    daemon = json.loads(lab_host(host).file("/etc/docker/daemon.json").content_string)
    assert daemon.get("log-driver", "json-file") == "json-file", daemon
    opts = {key: str(value) for key, value in daemon.get("log-opts", {}).items()}
    assert {key: opts.get(key) for key in LOG_CAPS} == LOG_CAPS, (
        f"{host}: expected daemon.json log-opts {LOG_CAPS}, saw {daemon.get('log-opts')}"
    )
    assert daemon.get("live-restore") is True, f"{host}: expected live-restore in daemon.json, saw {daemon}"
    colour, _ = active(host)
    log = container(host, colour)["HostConfig"]["LogConfig"]
    effective = log["Config"] or opts
    assert log["Type"] == "json-file", f"{host}: expected json-file logs, saw {log}"
    assert {key: effective.get(key) for key in LOG_CAPS} == LOG_CAPS, f"{host}: expected {LOG_CAPS}, saw {effective}"
    # the app logs JSON lines
    lines = lab_host(host).check_output(f"docker logs --tail 5 {APP}-{colour} 2>&1").splitlines()
    assert lines, f"{host}: expected log lines from {APP}-{colour}"
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            pytest.fail(f"{host}: expected the app to log JSON lines, saw {line[:200]!r}")


@pytest.mark.parametrize("host", APP_HOSTS)
def test_no_secret_value_in_docker_inspect_or_the_logs(host, lab_secrets):
    secrets = {name: value for name, value in lab_secrets.items() if isinstance(value, str) and len(value) >= 6}
    assert "vault_postgresql_app_password" in secrets, f"expected the app's database password in vault: {list(secrets)}"
    for name, inspected in containers(host).items():
        text = json.dumps(inspected) + lab_host(host).run(f"docker logs {name} 2>&1 | tail -n 2000").stdout
        leaked = sorted(key for key, value in secrets.items() if value in text)
        assert not leaked, f"{host}: expected no secret in `docker inspect {name}` or its logs, found {leaked}"
        env = dict(item.split("=", 1) for item in inspected["Config"]["Env"])
        assert "AGENT_DATABASE_PASSWORD" not in env, f"{host}: expected the password as a file only"
        # The password is there, as a file the app reads: the comparison above looks at the right value.
        path = env.get("AGENT_DATABASE_PASSWORD_FILE")
        assert path, f"{host}: expected AGENT_DATABASE_PASSWORD_FILE in {name}'s environment"
        if inspected["State"]["Running"]:
            inside = lab_host(host).run(f"docker exec {name} cat {path}")
            assert inside.rc == 0, f"{host}: expected {path} readable by the app: {inside.stderr}"
            assert digest(inside.stdout.strip()) == digest(secrets["vault_postgresql_app_password"]), (
                f"{host}: expected {path} to hold vault_postgresql_app_password (compared by hash)"
            )
            mounts = {m["Destination"]: m for m in inspected["Mounts"]}
            secret_dir = os.path.dirname(path)
            assert secret_dir in mounts and mounts[secret_dir]["RW"] is False, (
                f"{host}: expected {secret_dir} mounted read-only, saw {mounts.get(secret_dir)}"
            )


# --------------------------------------------------------------------------------------------
# The service


@pytest.mark.parametrize("host", APP_HOSTS)
def test_the_active_colour_is_ready_and_says_its_release(host):
    colour, release = active(host)
    port = API_PORT + OFFSETS[colour]
    status, body = on_host_http(host, port, "/readyz")
    assert status == 200, f"{host}: expected /readyz 200 on {colour} (:{port}), saw {status} {body[:300]}"
    assert json.loads(body).get("ready") is True, body
    status, body = on_host_http(host, port, "/version")
    version = json.loads(body) if status == 200 else {}
    assert (version.get("version"), version.get("colour")) == (release, colour), (
        f"{host}: expected /version to name {release} and {colour}, saw {status} {body}"
    )
    idle = "green" if colour == "blue" else "blue"
    refused = host_python(
        host, f"import socket; socket.create_connection(('127.0.0.1', {API_PORT + OFFSETS[idle]}), 3)"
    )
    assert refused.rc != 0, f"{host}: expected nothing on the idle colour's port {API_PORT + OFFSETS[idle]}"


def test_the_edge_serves_the_active_release(lab_ready):
    releases = {active(host)[1] for host in APP_HOSTS}
    seen = set()
    for _ in range(6):
        status, body = edge_request("GET", "/version")
        assert status == 200, f"expected /version through the edge to answer 200, saw {status} {body}"
        seen.add(body["version"])
    assert seen == releases, f"expected the edge to serve {releases}, saw {seen}"
    status, body = edge_request("GET", "/readyz")
    assert status == 200, f"expected /readyz through the edge 200, saw {status} {body}"


def test_data_written_through_the_edge_is_in_postgresql(lab_ready):
    value = f"lab-test-{uuid.uuid4()}"
    status, body = edge_request("POST", "/api/items", {"value": value})
    assert status == 201 and isinstance(body, dict) and isinstance(body.get("id"), int), (
        f"expected POST /api/items through the edge to answer 201 with an id, saw {status} {body}"
    )
    item = body["id"]
    stored = db1_query("SELECT value FROM items WHERE id = :'item'::bigint", item=str(item))
    assert stored == value, f"expected row {item} in db1's items to hold {value!r}, saw {stored!r}"
    for _ in range(2):  # the second read may come from the Redis cache, on either app host
        status, read = edge_request("GET", f"/api/items/{item}")
        assert (status, read.get("value")) == (200, value), f"expected item {item} to read {value!r}: {status} {read}"
    status, unknown = edge_request("GET", "/api/items/987654321")
    assert status == 404, f"expected an unknown item to be 404, saw {status} {unknown}"


@pytest.mark.parametrize("host", APP_HOSTS)
def test_metrics_need_tls_and_basic_auth(host):
    """Contract 3: the metrics port serves https with basic auth, never plain HTTP."""
    colour, _ = active(host)
    port = METRICS_PORT + OFFSETS[colour]
    script = (
        "import http.client, ssl\n"
        "context = ssl.create_default_context(cafile='/etc/corvid/pki/ca.crt')\n"
        f"c = http.client.HTTPSConnection({host!r}, {port}, context=context, timeout=10)\n"
        "c.connect()\n"
        "version = c.sock.version()\n"
        "c.request('GET', '/metrics')\n"
        "r = c.getresponse()\n"
        "print(r.status, version)\n"
    )
    run = host_python(host, script)
    assert run.rc == 0, f"{host}: expected https on {host}:{port}, saw {run.stderr.strip()[-300:]}"
    assert run.stdout.split() == ["401", "TLSv1.3"], (
        f"{host}: expected 401 over TLS 1.3 without credentials: {run.stdout}"
    )
    plain = on_host_http_error(host, port)
    assert plain, f"{host}: expected plain HTTP on :{port} to be refused"


def on_host_http_error(host: str, port: int) -> bool:
    """True when a plain-HTTP request to the port does not get an HTTP answer."""
    script = (
        "import http.client\n"
        "try:\n"
        f"    c = http.client.HTTPConnection('127.0.0.1', {port}, timeout=5)\n"
        "    c.request('GET', '/metrics')\n"
        "    r = c.getresponse()\n"
        "    print('answered', r.status)\n"
        "except Exception as error:\n"
        "    print('refused', type(error).__name__)\n"
    )
    out = host_python(host, script).stdout.strip()
    return out.startswith("refused") or out in ("answered 400",)


def app_targets(user: str, password: str) -> dict[str, tuple[str, str]]:
    """Prometheus's active targets of job `app`: instance -> (health, scrape URL)."""
    context = ssl.create_default_context(cafile=str(CA))
    conn = http.client.HTTPSConnection("127.0.0.1", 9090, context=context, timeout=10)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    conn.request("GET", "/api/v1/targets?state=active", headers={"Authorization": f"Basic {auth}"})
    targets = json.loads(conn.getresponse().read())["data"]["activeTargets"]
    conn.close()
    return {t["labels"]["instance"]: (t["health"], t["scrapeUrl"]) for t in targets if t["labels"]["job"] == "app"}


def test_prometheus_scrapes_the_active_colours_over_https(lab_ready):
    """Job `app` (Contract 3): the metrics port of every running colour, up (a target announced
    by the last converge gets a minute to be scraped)."""
    web = inventory_value("mon1", "[prometheus_web_username, prometheus_web_password]")
    expected = {f"{host}:{METRICS_PORT + OFFSETS[active(host)[0]]}" for host in APP_HOSTS}
    deadline = time.monotonic() + 60
    while True:
        app = app_targets(*web)
        if all(app.get(instance, ("",))[0] == "up" for instance in expected) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert expected <= set(app), f"expected Prometheus to scrape {sorted(expected)} in job app, saw {app}"
    for instance in expected:
        health, url = app[instance]
        assert url.startswith("https://"), f"expected {instance} scraped over https, saw {url}"
        assert health == "up", f"expected {instance} up, saw {health}"

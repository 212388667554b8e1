"""corvid.platform.mcp_check through Ansible against real MCP servers built with the official SDK."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import HAVE_AUTHLIB, ROOT, metric_lines, run_module, run_playbook, target_python

from recap import parse_recap

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def matrix(servers, certs, bearer_token, tmp_path_factory):
    """One module call over every kind of server the client claims to handle."""
    metrics = tmp_path_factory.mktemp("matrix") / "mcp.prom"
    chatty = {"name": "chatty_echo", "arguments": {"text": "hello"}, "expected_text": "hello"}
    ca = str(certs / "ca.pem")
    endpoints = [
        {
            "name": "stateful",
            "url": servers.url("stateful_sse"),
            "transport": "streamable_http",
            "expected_tools": ["echo", "add"],
            "list_resources": True,
            "list_prompts": True,
            "call_tool": chatty,
        },
        {
            "name": "stateless",
            "url": servers.url("stateless_json"),
            "call_tool": {"name": "add", "arguments": {"a": 2, "b": 3}, "expected_structured": {"result": 5}},
        },
        {"name": "stateful-json", "url": servers.url("stateful_json"), "call_tool": chatty},
        {"name": "legacy-auto", "url": servers.url("legacy_sse"), "call_tool": chatty},
        {"name": "legacy-fixed", "url": servers.url("legacy_sse"), "transport": "sse"},
        {"name": "bearer-ok", "url": servers.url("bearer"), "bearer_token": bearer_token},
        {"name": "bearer-missing", "url": servers.url("bearer")},
        {"name": "bearer-wrong", "url": servers.url("bearer"), "bearer_token": "not-the-token"},
        {"name": "tls", "url": servers.url("tls"), "ca_path": str(certs / "ca.pem")},
        {"name": "tls-wrong-ca", "url": servers.url("tls"), "ca_path": str(certs / "wrong-ca.pem")},
        {"name": "tls-system-store", "url": servers.url("tls")},
        {"name": "tls-unverified", "url": servers.url("tls"), "validate_certs": False},
        {"name": "tls13-required", "url": servers.url("tls"), "ca_path": ca, "tls_min_version": "TLSv1.3"},
        {"name": "tls12", "url": servers.url("tls12"), "ca_path": ca},
        {"name": "tls12-refused", "url": servers.url("tls12"), "ca_path": ca, "tls_min_version": "TLSv1.3"},
        {
            "name": "mtls",
            "url": servers.url("mtls"),
            "ca_path": str(certs / "ca.pem"),
            "client_cert": str(certs / "client.pem"),
            "client_key": str(certs / "client.key"),
        },
        {"name": "mtls-no-cert", "url": servers.url("mtls"), "ca_path": str(certs / "ca.pem")},
        {"name": "noping", "url": servers.url("noping")},
        {"name": "paginated", "url": servers.url("paginated"), "expected_tools": ["tool_000", "tool_024"]},
        {"name": "slow", "url": servers.url("slow"), "timeout": 1.5},
        {"name": "drop", "url": servers.url("drop")},
        {"name": "modern-only", "url": servers.url("modern_only"), "call_tool": chatty},
        {"name": "modern-forced", "url": servers.url("stateless_json"), "protocol_version": "2026-07-28"},
        {"name": "old-version", "url": servers.url("stateful_sse"), "protocol_version": "2024-11-05"},
        {
            "name": "too-old",
            "url": servers.url("stateful_sse"),
            "protocol_version": "2024-11-05",
            "min_protocol_version": "2025-06-18",
        },
        {"name": "missing-tool", "url": servers.url("stateless_json"), "expected_tools": ["echo", "web_search"]},
        {"name": "failing-call", "url": servers.url("stateless_json"), "call_tool": {"name": "fail"}},
        {"name": "unreachable", "url": "http://127.0.0.1:9/mcp"},
        {"name": "not-mcp", "url": servers.url("stateless_json").replace("/mcp", "/nothing-here")},
    ]
    run = run_module(
        {
            "endpoints": endpoints,
            "timeout": 5,
            "failure_policy": "never",
            "textfile_path": str(metrics),
            "metrics_labels": {"checker": "pytest"},
        }
    )
    assert run.rc == 0, run.stdout + run.stderr
    return run, metrics


def test_streamable_http_with_sessions_and_sse_answers(matrix, servers):
    run, _ = matrix
    res = run.endpoint("stateful")
    assert res["up"] and res["healthy"], res
    assert res["transport"] == "streamable_http" and res["era"] == "handshake"
    assert res["protocol_version"] == "2025-11-25"
    assert res["session"] is True and res["ping_supported"] is True
    assert res["server_info"] == {"name": "corvid-stateful", "version": "1.2.3"}
    assert res["instructions"] == "Test server for corvid.platform.mcp_check"
    assert set(res["tools"]) == {"echo", "add", "chatty_echo", "fail"} and res["tool_count"] == 4
    assert res["resources"] == ["corvid://status"] and res["prompts"] == ["greet"]
    assert res["call"]["text"] == "hello" and res["call"]["is_error"] is False  # progress + log came first
    assert "tools" in res["capabilities"]
    assert res["url"] == servers.url("stateful_sse")
    for stage in ("connect", "initialize", "ping", "list", "call", "total"):
        assert res["latency_ms"][stage] > 0, stage
    assert res["latency_ms"]["tls"] is None
    assert res["warnings"] == []


def test_stateless_json(matrix):
    res = matrix[0].endpoint("stateless")
    assert res["healthy"], res
    assert res["session"] is False  # no Mcp-Session-Id, so no DELETE either
    assert res["call"]["structured"] == {"result": 5}


def test_stateful_json(matrix):
    res = matrix[0].endpoint("stateful-json")
    assert res["healthy"], res
    assert res["session"] is True and res["http_status"] == 200
    assert res["call"]["text"] == "hello"  # notifications have no wire in JSON mode; the answer still comes


def test_legacy_sse_auto_detected_and_fixed(matrix):
    run, _ = matrix
    for name in ("legacy-auto", "legacy-fixed"):
        res = run.endpoint(name)
        assert res["healthy"], res
        assert res["transport"] == "sse" and res["session"] is True
        assert res["protocol_version"] == "2025-11-25"
    assert run.endpoint("legacy-auto")["call"]["text"] == "hello"


def test_bearer_auth(matrix):
    run, _ = matrix
    assert run.endpoint("bearer-ok")["healthy"]
    for name in ("bearer-missing", "bearer-wrong"):
        res = run.endpoint(name)
        assert not res["up"] and res["failed_stage"] == "initialize" and res["http_status"] == 401
        assert res["www_authenticate"].startswith("Bearer ")
        assert res["resource_metadata"].endswith("/.well-known/oauth-protected-resource/mcp")
        assert res["resource_metadata"] in res["www_authenticate"]
        assert res["transport"] is None  # a 401 is not a reason to try the legacy transport


def test_tls(matrix):
    run, _ = matrix
    res = run.endpoint("tls")
    assert res["healthy"], res
    assert res["latency_ms"]["tls"] > 0
    assert run.endpoint("tls-unverified")["healthy"]
    for name in ("tls-wrong-ca", "tls-system-store"):
        res = run.endpoint(name)
        assert not res["up"] and res["failed_stage"] == "tls"
        assert "certificate verify failed" in res["error"]


def test_tls_version_reported_and_minimum_enforced(matrix):
    run, metrics = matrix
    assert run.endpoint("tls")["tls_version"] == "TLSv1.3"
    assert run.endpoint("tls13-required")["healthy"]
    res = run.endpoint("tls12")
    assert res["healthy"] and res["tls_version"] == "TLSv1.2", res
    res = run.endpoint("tls12-refused")
    assert not res["up"] and res["failed_stage"] == "tls" and res["tls_version"] is None, res
    assert "TLSv1.3, which tls_min_version requires" in res["error"]
    assert run.endpoint("stateful")["tls_version"] is None
    lines = metric_lines(metrics)
    assert 'mcp_endpoint_tls_info{checker="pytest",endpoint="tls12",tls_version="TLSv1.2"} 1' in lines
    assert 'mcp_endpoint_tls_info{checker="pytest",endpoint="tls",tls_version="TLSv1.3"} 1' in lines


def test_mutual_tls(matrix):
    run, _ = matrix
    assert run.endpoint("mtls")["healthy"]
    res = run.endpoint("mtls-no-cert")
    assert not res["up"] and res["failed_stage"] == "tls", res
    assert "certificate" in res["error"].lower()


def test_server_without_ping(matrix):
    res = matrix[0].endpoint("noping")
    assert res["healthy"] and res["ping_supported"] is False


def test_paginated_tool_list(matrix, paginated_tools):
    res = matrix[0].endpoint("paginated")
    assert res["healthy"], res
    assert res["tool_count"] == paginated_tools
    assert res["tools"] == [f"tool_{i:03d}" for i in range(paginated_tools)]


def test_slow_server_times_out(matrix):
    run, _ = matrix
    res = run.endpoint("slow")
    assert not res["up"] and res["failed_stage"] == "list"
    assert "timed out" in res["error"]
    assert 1400 <= res["latency_ms"]["total"] < 2500
    assert run.result["elapsed"] < 5  # the hard timeout held; every other endpoint ran alongside


def test_server_closing_mid_stream(matrix):
    res = matrix[0].endpoint("drop")
    assert not res["up"] and res["failed_stage"] == "list"
    assert "mid-stream" in res["error"] or "connection" in res["error"]


def test_2026_revision(matrix):
    run, _ = matrix
    res = run.endpoint("modern-only")
    assert res["healthy"], res
    assert res["protocol_version"] == "2026-07-28" and res["era"] == "modern"
    assert res["session"] is False and res["ping_supported"] is False
    assert res["server_info"]["name"] == "corvid-modern"
    assert res["call"]["text"] == "hello"
    forced = run.endpoint("modern-forced")
    assert forced["healthy"] and forced["protocol_version"] == "2026-07-28"


def test_version_negotiation_and_minimum(matrix):
    run, _ = matrix
    assert run.endpoint("old-version")["protocol_version"] == "2024-11-05"
    assert run.endpoint("old-version")["healthy"]
    res = run.endpoint("too-old")
    assert res["up"] and not res["healthy"] and res["failed_stage"] == "initialize"
    assert "older than the minimum 2025-06-18" in res["error"]


def test_assertion_failures(matrix):
    run, _ = matrix
    res = run.endpoint("missing-tool")
    assert res["up"] and not res["healthy"] and res["missing_tools"] == ["web_search"]
    res = run.endpoint("failing-call")
    assert res["up"] and not res["healthy"] and res["failed_stage"] == "call"
    assert res["call"]["is_error"] is True and "returned an error result" in res["error"]


def test_unreachable_and_non_mcp_endpoints_are_results(matrix):
    run, _ = matrix
    res = run.endpoint("unreachable")
    assert not res["up"] and res["failed_stage"] == "connect" and "Connection refused" in res["error"]
    res = run.endpoint("not-mcp")
    assert not res["up"] and res["failed_stage"] == "initialize" and res["http_status"] == 404


def test_summary(matrix):
    run, _ = matrix
    summary = run.result["summary"]
    assert summary["total"] == len(run.result["endpoints"])
    assert summary["up"] + summary["down"] == summary["total"]
    assert set(run.result["unhealthy"]) == {
        "bearer-missing",
        "bearer-wrong",
        "tls-wrong-ca",
        "tls-system-store",
        "tls12-refused",
        "mtls-no-cert",
        "slow",
        "drop",
        "too-old",
        "missing-tool",
        "failing-call",
        "unreachable",
        "not-mcp",
    }
    assert run.result["changed"] is True and not run.failed


def test_metrics_file(matrix, paginated_tools):
    _run, metrics = matrix
    lines = metric_lines(metrics)
    text = metrics.read_text()
    assert re.search(
        r'^mcp_endpoint_up\{checker="pytest",endpoint="stateful",url="[^"]+",'
        r'transport="streamable_http"\} 1$',
        text,
        re.M,
    )
    assert re.search(r'^mcp_endpoint_up\{checker="pytest",endpoint="unreachable",[^}]*\} 0$', text, re.M)
    assert f'mcp_endpoint_tools{{checker="pytest",endpoint="paginated"}} {paginated_tools}' in lines
    assert 'mcp_endpoint_healthy{checker="pytest",endpoint="missing-tool"} 0' in lines
    assert 'mcp_endpoint_expected_tools_missing{checker="pytest",endpoint="missing-tool"} 1' in lines
    assert 'mcp_endpoint_failure_info{checker="pytest",endpoint="slow",stage="list"} 1' in lines
    assert 'mcp_endpoint_http_status{checker="pytest",endpoint="bearer-missing"} 401' in lines
    assert any(
        line.startswith(
            'mcp_endpoint_protocol_info{checker="pytest",endpoint="modern-only",'
            'protocol_version="2026-07-28",era="modern"'
        )
        for line in lines
    )
    assert any(
        line.startswith('mcp_endpoint_latency_seconds{checker="pytest",endpoint="tls",stage="tls"}') for line in lines
    )
    assert any(line.startswith("mcp_check_last_run_timestamp_seconds") for line in lines)
    assert oct(metrics.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in metrics.parent.iterdir()] == ["mcp.prom"]


def test_check_mode_does_not_write_metrics(servers, ansible_tmp):
    metrics = ansible_tmp / "mcp.prom"
    args = {"url": servers.url("stateless_json"), "name": "s", "textfile_path": str(metrics)}
    run = run_module(args, "--check", "--diff")
    assert run.rc == 0 and run.result["changed"] is True
    assert not metrics.exists()
    assert 'mcp_endpoint_up{endpoint="s"' in run.result["diff"]["after"]
    assert run.result["endpoints"][0]["healthy"]  # the check itself still ran
    run = run_module(args)
    assert run.result["changed"] is True and metrics.exists()


@pytest.mark.parametrize(
    ("policy", "names", "fails"),
    [
        ("any", ["ok", "down"], True),
        ("all", ["ok", "down"], False),
        ("all", ["down"], True),
        ("never", ["down"], False),
    ],
)
def test_failure_policy(servers, policy, names, fails):
    urls = {"ok": servers.url("stateless_json"), "down": "http://127.0.0.1:9/mcp"}
    run = run_module({"endpoints": [{"name": n, "url": urls[n]} for n in names], "failure_policy": policy})
    assert run.failed is fails and (run.rc != 0) is fails
    if fails:
        assert "down (connect: cannot connect to 127.0.0.1:9" in run.result["msg"]
    assert run.endpoint("down")["up"] is False


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ({"url": "127.0.0.1:8000/mcp"}, "url"),
        ({"url": "http:///mcp"}, "url"),
        ({"url": "http://127.0.0.1:9/mcp", "transport": "websocket"}, "transport"),
        ({"url": "http://127.0.0.1:9/mcp", "timeout": -5}, "timeout"),
        ({"url": "http://127.0.0.1:9/mcp", "expected_tools": "echo"}, "expected_tools"),
        ({"url": "http://127.0.0.1:9/mcp", "textfile_path": "/nonexistent/corvid/mcp.prom"}, "textfile_path"),
        ({"endpoints": [{"url": "http://127.0.0.1:9/mcp", "timeout": 0}]}, "endpoints[0].timeout"),
        # Faults a fault-injection run found: these used to be reported as endpoint outages.
        ({"url": "http://127.0.0.1:9/mcp", "timeout": "nan"}, "timeout: must be a finite number"),
        ({"url": "http://127.0.0.1:9/mcp", "timeout": "inf"}, "timeout: must be a finite number"),
        ({"url": "http://127.0.0.1:9/mcp", "timeout": 1e12}, "timeout: must be at most"),
        ({"url": "http://127.0.0.1:9/mcp", "max_latency_ms": "nan"}, "max_latency_ms: must be a finite number"),
        ({"url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "s\u00e9same"}}, "headers: the value of header"),
        ({"url": "http://127.0.0.1:9/my mcp"}, "url: http://127.0.0.1:9/my mcp contains a space"),
        # A YAML block scalar leaves a line break at the end of a token; it used to be printed verbatim.
        ({"url": "http://127.0.0.1:9/mcp", "bearer_token": "sekrit-block-token\n"}, "bearer_token: the token"),
    ],
)
def test_bad_input_fails_naming_the_option(args, option):
    run = run_module(args, "-vvv")
    assert run.rc != 0 and run.failed
    assert option in run.result["msg"], run.result["msg"]
    assert "endpoints" not in run.result  # failed before any request
    output = run.stdout + run.stderr
    assert "Traceback" not in output
    assert "sekrit" not in output


def test_a_short_query_value_does_not_turn_numbers_into_strings(servers):
    """?v=1 used to become a no_log value, so every 1 in the result was masked and counts became strings."""
    run = run_module({"url": servers.url("stateless_json") + "?v=1", "name": "short"})
    assert run.rc == 0, run.result
    assert run.result["summary"] == {"total": 1, "up": 1, "down": 0, "healthy": 1, "unhealthy": 0}
    assert isinstance(run.endpoint("short")["tool_count"], int)
    assert run.endpoint("short")["url"].endswith("/mcp?v=REDACTED")


def test_secrets_never_show(servers, bearer_token):
    header_value = "x-api-secret-4e1d"
    args = {
        "endpoints": [
            {
                "name": "bearer",
                "url": servers.url("bearer"),
                "bearer_token": bearer_token,
                "headers": {"X-Api-Key": header_value},
            },
            {"name": "wrong", "url": servers.url("bearer"), "bearer_token": "wrong-token-77aa"},
        ],
        "failure_policy": "never",
    }
    for callback in ("ansible.posix.json", "ansible.builtin.default"):
        run = run_module(args, "-vvv", callback=callback)
        output = run.stdout + run.stderr
        assert run.rc == 0, output
        for secret in (bearer_token, header_value, "wrong-token-77aa"):
            assert secret not in output, f"{secret} leaked with {callback}"
    run = run_module(args)
    assert run.endpoint("bearer")["healthy"]
    assert bearer_token not in json.dumps(run.result)


def test_url_secrets_never_show(servers):
    """The password and query values of a URL stay out of the output, invocation.module_args included."""
    password, api_key = "s3cret-pw-91c", "TOPSECRET-q-55d"
    url = servers.url("stateless_json").replace("http://", f"http://alice:{password}@") + f"?api_key={api_key}"
    for args in (
        {"url": url, "name": "single"},
        {"endpoints": [{"name": "listed", "url": url}], "failure_policy": "never"},
        {"endpoints": [{"name": "listed", "url": url}, {"url": "ftp://127.0.0.1/mcp"}]},  # fails on options
    ):
        for callback in ("ansible.posix.json", "ansible.builtin.default"):
            # ansible-core 2.21 adds the invocation only when asked; 2.20 always does.
            run = run_module(args, "-vvv", "-e", "ansible_inject_invocation=true", callback=callback)
            output = run.stdout + run.stderr
            assert "Traceback" not in output, output
            assert "alice:********@127.0.0.1" in output, output  # the invocation is there, masked
            for secret in (password, api_key):
                assert secret not in output, f"{secret} leaked with {callback}: {output}"
    run = run_module({"url": url, "name": "single"})
    assert run.rc == 0 and run.endpoint("single")["healthy"], run.result
    assert run.endpoint("single")["url"].endswith("/mcp?api_key=REDACTED")


def test_health_playbook(servers, bearer_token, ansible_tmp):
    """playbooks/mcp_health.yml (the mcp_health role) on localhost with endpoints as inventory-style variables."""
    metrics = ansible_tmp / "mcp.prom"
    variables = {
        "mcp_health_hosts": "localhost",
        "ansible_become": False,  # the play becomes root for the textfile directory; here the test user owns it
        "mcp_health_textfile_path": str(metrics),
        "mcp_health_failure_policy": "any",
        "mcp_health_endpoints": [
            {"name": "stateful", "url": servers.url("stateful_sse"), "expected_tools": ["echo"]},
            {"name": "bearer", "url": servers.url("bearer"), "bearer_token": bearer_token, "max_latency_ms": 5000},
            {"name": "legacy", "url": servers.url("legacy_sse"), "transport": "sse"},
        ],
    }
    extra = ansible_tmp / "vars.json"

    def run_health(variables):
        """Run playbooks/mcp_health.yml on localhost with these variables; return the run and its output."""
        extra.write_text(json.dumps(variables))
        completed = run_playbook(
            ROOT / "playbooks" / "mcp_health.yml", "-i", "localhost,", "-c", "local", "-e", f"@{extra}"
        )
        return completed, completed.stdout + completed.stderr

    completed, output = run_health(variables)
    assert completed.returncode == 0, output
    assert "3 of 3 MCP endpoints healthy" in output
    assert "stateful: up" in output and "legacy: up" in output
    assert bearer_token not in output
    assert 'mcp_endpoint_healthy{checker="localhost",endpoint="bearer"} 1' in metric_lines(metrics)

    variables["mcp_health_endpoints"].append({"name": "gone", "url": "http://127.0.0.1:9/mcp"})
    completed, output = run_health(variables)
    assert completed.returncode != 0
    assert "gone: DOWN at connect" in output
    assert 'mcp_endpoint_up{checker="localhost",endpoint="gone"' in metrics.read_text()
    # the module applied the policy and the report still ran after it failed the task
    assert "fatal: [localhost]: FAILED!" in output and "Report every endpoint]" in output
    assert "1 of 4 MCP endpoints unhealthy: gone (connect: cannot connect" in output
    recap = parse_recap(completed.stdout)["localhost"]
    # ok: the role's argument validation and the report
    assert (recap["ok"], recap["failed"]) == (2, 1), output

    variables["mcp_health_failure_policy"] = "never"
    completed, output = run_health(variables)
    assert completed.returncode == 0, output
    assert "gone: DOWN at connect" in output

    variables["mcp_health_timeout"] = -1  # bad options: no endpoints in the result, the report still runs
    completed, output = run_health(variables)
    assert completed.returncode != 0
    assert "Report every endpoint]" in output
    report = output.split("Report every endpoint]", 1)[-1]
    assert re.search(r"ok: \[localhost\] =>\s+msg:\s+- '?endpoints\[0\]\.timeout: must be greater", report), output


def test_module_wall_time_for_many_endpoints(servers):
    """Not a benchmark (see tests/bench/bench_mcp.py), just a guard that checks really run concurrently."""
    endpoints = [{"name": f"e{i}", "url": servers.url("stateless_json")} for i in range(30)]
    run = run_module({"endpoints": endpoints, "workers": 30})
    assert run.rc == 0 and run.result["summary"]["healthy"] == 30
    assert run.result["elapsed"] < 5


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.12", "3.13"])
def test_runs_on_every_target_python(servers, certs, version):
    """Managed hosts run Python 3.9 (the oldest ansible-core 2.20 and 2.21 accept) to 3.13 (3.11 is every
    other test's interpreter)."""
    interpreter = target_python(version)
    if interpreter is None:
        pytest.skip(f"no Python {version} on this machine")
    endpoints = [
        {
            "name": "stateful",
            "url": servers.url("stateful_sse"),
            "call_tool": {"name": "add", "arguments": {"a": 1, "b": 2}, "expected_text": "3"},
        },
        {"name": "legacy", "url": servers.url("legacy_sse")},
        {"name": "modern", "url": servers.url("modern_only")},
        {"name": "tls", "url": servers.url("tls"), "ca_path": str(certs / "ca.pem")},
        {"name": "drop", "url": servers.url("drop")},
    ]
    healthy = ["stateful", "legacy", "modern", "tls", "resumable"]
    endpoints.append({"name": "resumable", "url": servers.url("resumable")})
    if HAVE_AUTHLIB:  # private_key_jwt: RS256 and ES256 signed with the standard library of that Python
        for name in ("jwt-rsa", "jwt-ec"):
            oauth = {"client_id": f"corvid-{name}", "private_key": str(certs / f"{name}.key")}
            endpoints.append(
                {"name": name, "url": servers.url("oauth_mcp"), "ca_path": str(certs / "ca.pem"), "oauth": oauth}
            )
            healthy.append(name)
    args = {"endpoints": endpoints, "failure_policy": "never"}
    run = run_module(args, "-e", f"ansible_python_interpreter={interpreter}")
    assert run.rc == 0, run.stdout + run.stderr
    assert [e["name"] for e in run.result["endpoints"] if e["healthy"]] == healthy, run.result["msg"]
    assert run.endpoint("drop")["failed_stage"] == "list"
    assert run.endpoint("tls")["tls_version"] == "TLSv1.3" and run.endpoint("resumable")["resumptions"] == 1


def test_collection_layout():
    assert (ROOT / "plugins" / "modules" / "mcp_check.py").exists()
    assert Path(ROOT / "playbooks" / "mcp_health.yml").exists()


def test_stream_resumption(servers, ansible_tmp):
    """SDK servers that close the tools/list response stream early (retry 200 ms): one replays the answer
    on GET with Last-Event-ID, the other never does."""
    metrics = ansible_tmp / "mcp.prom"
    endpoints = [
        {"name": "resumable", "url": servers.url("resumable")},
        {"name": "unresumable", "url": servers.url("unresumable"), "timeout": 2},
    ]
    run = run_module({"endpoints": endpoints, "failure_policy": "never", "textfile_path": str(metrics)})
    assert run.rc == 0, run.stdout + run.stderr
    res = run.endpoint("resumable")
    assert res["healthy"] and res["tools"] == ["echo"], res
    assert res["resumptions"] == 1 and res["latency_ms"]["list"] >= 200
    res = run.endpoint("unresumable")
    assert not res["up"] and res["failed_stage"] == "list", res
    assert "timed out" in res["error"] and "the response stream was resumed" in res["error"], res["error"]
    assert res["resumptions"] >= 3
    assert res["latency_ms"]["total"] < 2500  # within the deadline
    lines = metric_lines(metrics)
    assert 'mcp_endpoint_stream_resumptions{endpoint="resumable"} 1' in lines

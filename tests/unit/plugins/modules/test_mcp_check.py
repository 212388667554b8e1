"""plugins/modules/mcp_check.py: option handling, bad input, summary, failure policy and check mode."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.common.parameters import PASS_VARS
from ansible.module_utils.testing import patch_module_args
from ansible_collections.corvid.platform.plugins.module_utils._mcp.check import new_result
from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import DEFAULTS, PER_ENDPOINT_OPTIONS
from ansible_collections.corvid.platform.plugins.modules import mcp_check


class ModuleExit(Exception):
    def __init__(self, kind, result):
        super().__init__(kind)
        self.kind = kind
        self.result = result


@pytest.fixture
def run(monkeypatch):
    """Run the module's main() with the given args; return (kind, result) where kind is 'exit' or 'fail'."""

    def exit_json(self, **kwargs):
        raise ModuleExit("exit", kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise ModuleExit("fail", kwargs)

    monkeypatch.setattr(mcp_check.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(mcp_check.AnsibleModule, "fail_json", fail_json)

    def runner(args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        with patch_module_args(args), pytest.raises(ModuleExit) as caught:
            mcp_check.main()
        return caught.value.kind, caught.value.result

    return runner


def fake_result(config, up=True, healthy=True):
    result = new_result(config)
    result.update(up=up, healthy=healthy, tool_count=1, tools=["echo"], protocol_version="2025-11-25")
    if not healthy:
        result.update(failed_stage="connect", error="cannot connect", failures=["cannot connect"])
    return result


@pytest.fixture
def fake_checks(monkeypatch):
    """Replace the network part: endpoints whose name starts with 'down' are down."""
    seen = {}

    def run_checks(configs, workers=16, ssl_contexts=None, grace=1.0):
        seen["configs"] = configs
        seen["workers"] = workers
        seen["ssl_contexts"] = ssl_contexts
        return [fake_result(c, healthy=not (c.get("name") or "").startswith("down")) for c in configs]

    monkeypatch.setattr(mcp_check, "run_checks", run_checks)
    return seen


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"url": "mcp.example.com/mcp"}, "url: "),
        ({"url": "http:///mcp"}, "url: "),
        ({"url": "https://a.example/mcp", "transport": "carrier-pigeon"}, "transport"),
        ({"url": "https://a.example/mcp", "timeout": -1}, "timeout: must be greater than 0"),
        ({"url": "https://a.example/mcp", "expected_tools": "search"}, "expected_tools: must be a list"),
        ({"url": "https://a.example/mcp", "expected_tools": ["ok", 3]}, "expected_tools: must be a list"),
        ({"url": "https://a.example/mcp", "textfile_path": "/nonexistent-dir/mcp.prom"}, "textfile_path: "),
        ({"url": "https://a.example/mcp", "workers": 0}, "workers: must be at least 1"),
        ({"url": "https://a.example/mcp", "max_latency_ms": 0}, "max_latency_ms: must be greater than 0"),
        ({"url": "https://a.example/mcp", "client_key": "/k.pem"}, "client_key: needs client_cert"),
        ({"url": "https://a.example/mcp", "ca_path": "/nonexistent/ca.pem"}, "ca_path: cannot load CA bundle"),
        (
            {"endpoints": [{"url": "https://a.example/mcp", "ca_path": "/nonexistent/ca.pem"}]},
            "endpoints[0].ca_path: cannot load CA bundle",
        ),
        (
            {"endpoints": [{"url": "http://a.example/mcp"}, {"url": "https://b.example/mcp", "client_cert": "/c.pem"}]},
            "endpoints[1].client_cert: cannot load",
        ),
        ({"url": "https://a.example/mcp", "headers": {"X-Bad": "a\nb"}}, "headers: "),
        ({"url": "https://a.example/mcp", "headers": {"X-Bad": "caf\u00e9"}}, "headers: the value of header 'X-Bad'"),
        ({"url": "https://a.example/mcp", "bearer_token": "sekrit-token\n"}, "bearer_token: the token contains a line"),
        ({"endpoints": [{"url": "https://a.example/mcp", "bearer_token": "x\ry"}]}, "endpoints[0].bearer_token: "),
        ({"url": "https://a.example/mcp", "timeout": "nan"}, "timeout: must be a finite number"),
        ({"url": "https://a.example/mcp", "timeout": "inf"}, "timeout: must be a finite number"),
        ({"url": "https://a.example/mcp", "timeout": 1e12}, "timeout: must be at most 3600"),
        ({"url": "https://a.example/mcp", "max_latency_ms": "nan"}, "max_latency_ms: must be a finite number"),
        ({"url": "https://a.example/my mcp"}, "url: https://a.example/my mcp contains a space"),
        ({"url": "https://a.example/mcp", "metrics_labels": {"bad-label": "x"}}, "metrics_labels: "),
        ({"endpoints": [{"url": "https://a.example/mcp"}, {"url": "ftp://b.example/mcp"}]}, "endpoints[1].url: "),
        ({"endpoints": [{"url": "https://a.example/mcp", "timeout": -2}]}, "endpoints[0].timeout: "),
        ({"endpoints": [{"url": "https://a.example/mcp", "expected_tools": {"a": 1}}]}, "endpoints[0].expected_tools"),
        ({"endpoints": [{"url": "https://a.example/mcp"}, {"url": "https://a.example/mcp"}]}, "distinct names"),
        ({"endpoints": [{"url": "https://a.example/mcp", "transport": "smoke"}]}, "transport"),
        ({}, "one of the following is required: url, endpoints"),
        ({"url": "https://a.example/mcp", "endpoints": []}, "mutually exclusive"),
    ],
)
def test_bad_input_names_the_option(run, fake_checks, args, fragment):
    kind, result = run(args)
    assert kind == "fail"
    assert fragment in result["msg"], result["msg"]
    assert "sekrit" not in result["msg"]
    assert "configs" not in fake_checks  # nothing was checked


def test_tls_errors_of_a_single_listed_endpoint_name_the_list_element(run, fake_checks):
    kind, result = run({"endpoints": [{"url": "https://a.example/mcp", "ca_path": "/nonexistent/ca.pem"}]})
    assert kind == "fail"
    assert result["msg"].startswith("endpoints[0].ca_path: cannot load CA bundle /nonexistent/ca.pem"), result["msg"]
    kind, result = run({"url": "https://a.example/mcp", "ca_path": "/nonexistent/ca.pem"})
    assert result["msg"].startswith("ca_path: cannot load CA bundle"), result["msg"]


@pytest.mark.parametrize(
    "args",
    [
        {"url": "http://alice:s3cret-pw-91@a.example/mcp?api_key=TOPSECRET-q-55&plain"},
        {"endpoints": [{"url": "http://alice:s3cret-pw-91@a.example/mcp?api_key=TOPSECRET-q-55", "name": "a"}]},
        # failing on a later option must not show them either
        {"url": "http://alice:s3cret-pw-91@a.example/mcp?api_key=TOPSECRET-q-55", "timeout": -1},
        {
            "endpoints": [
                {"url": "http://alice:s3cret-pw-91@a.example/mcp?api_key=TOPSECRET-q-55"},
                {"url": "ftp://b.example/mcp"},
            ]
        },
    ],
)
def test_url_secrets_never_reach_the_output(fake_checks, capsys, args):
    """The real exit_json/fail_json: invocation.module_args keeps the URL, with its secrets masked.

    ansible-core 2.21 adds the invocation only when asked (ANSIBLE_INJECT_INVOCATION); 2.20
    always does (and rejects the key). The test asks where the key exists.
    """
    if "inject_invocation" in PASS_VARS:
        args = {**args, "_ansible_inject_invocation": True}
    with patch_module_args(args), pytest.raises(SystemExit):
        mcp_check.main()
    output = json.loads(capsys.readouterr().out)
    invocation = output["invocation"]["module_args"]
    url = invocation["url"] if args.get("url") else invocation["endpoints"][0]["url"]
    plain = "&plain" if "plain" in args.get("url", "") else ""
    assert url == "http://alice:********@a.example/mcp?api_key=********" + plain
    for secret in ("s3cret-pw-91", "TOPSECRET-q-55"):
        assert secret not in json.dumps(output)
    if "endpoints" in output:
        assert output["endpoints"][0]["url"] == "http://a.example/mcp?api_key=REDACTED" + plain


def test_endpoint_options_fall_back_to_top_level(run, fake_checks):
    kind, result = run(
        {
            "endpoints": [
                {"url": "https://a.example/mcp", "name": "a", "timeout": 2, "headers": {"X-A": "1"}},
                {"url": "http://b.example/sse", "name": "b", "transport": "sse", "ping": False},
            ],
            "timeout": 7,
            "bearer_token": "top-secret-token",
            "expected_tools": ["echo"],
            "workers": 4,
        }
    )
    assert kind == "exit", result
    a, b = fake_checks["configs"]
    assert a["timeout"] == 2 and b["timeout"] == 7
    assert a["transport"] == "auto" and b["transport"] == "sse"
    assert a["ping"] is True and b["ping"] is False
    assert a["bearer_token"] == b["bearer_token"] == "top-secret-token"
    assert a["headers"] == {"X-A": "1"} and b["headers"] is None
    assert a["expected_tools"] == b["expected_tools"] == ["echo"]
    assert fake_checks["workers"] == 4
    assert list(fake_checks["ssl_contexts"]) == [0]  # only the https endpoint gets a TLS context
    assert "top-secret-token" not in json.dumps(result)


@pytest.mark.parametrize(
    ("policy", "names", "kind"),
    [
        ("any", ["up1", "up2"], "exit"),
        ("any", ["up1", "down1"], "fail"),
        ("all", ["up1", "down1"], "exit"),
        ("all", ["down1", "down2"], "fail"),
        ("never", ["down1", "down2"], "exit"),
    ],
)
def test_failure_policy(run, fake_checks, policy, names, kind):
    endpoints = [{"url": f"https://{n}.example/mcp", "name": n} for n in names]
    got, result = run({"endpoints": endpoints, "failure_policy": policy})
    assert got == kind
    assert result["summary"]["total"] == len(names)
    assert result["unhealthy"] == [n for n in names if n.startswith("down")]
    if kind == "fail":
        assert "unhealthy" in result["msg"] and "down1 (connect: cannot connect)" in result["msg"]


def test_empty_endpoint_list_is_fine(run, fake_checks):
    kind, result = run({"endpoints": []})
    assert kind == "exit" and result["msg"] == "no MCP endpoints to check"


def test_metrics_file_check_mode_diff_and_changed(run, fake_checks, tmp_path):
    path = tmp_path / "mcp.prom"
    args = {"url": "https://a.example/mcp", "name": "a", "textfile_path": str(path), "metrics_labels": {"env": "t"}}
    kind, result = run(args, check_mode=True, diff=True)
    assert kind == "exit" and result["changed"] is True
    assert not path.exists()
    assert 'mcp_endpoint_up{env="t",endpoint="a"' in result["diff"]["after"] and result["diff"]["before"] == ""
    kind, result = run(args)
    assert result["changed"] is True and result["metrics_path"] == str(path)
    assert 'mcp_endpoint_healthy{env="t",endpoint="a"} 1' in path.read_text()


def test_no_metrics_file_means_never_changed(run, fake_checks):
    kind, result = run({"url": "https://a.example/mcp"})
    assert kind == "exit" and result["changed"] is False and "metrics_path" not in result


def test_argument_spec_matches_documentation():
    import yaml

    doc = yaml.safe_load(mcp_check.DOCUMENTATION)
    spec = mcp_check.argument_spec()

    def compare(doc_options, spec_options, where):
        assert set(doc_options) == set(spec_options), where
        for name, option in spec_options.items():
            documented = doc_options[name]
            assert documented.get("type", "str") == option.get("type", "str"), f"{where}{name}"
            assert documented.get("choices") == option.get("choices"), f"{where}{name}"
            assert documented.get("required", False) == option.get("required", False), f"{where}{name}"
            assert documented.get("default") == option.get("default"), f"{where}{name}"
            if option.get("options"):
                compare(documented["suboptions"], option["options"], f"{where}{name}.")

    compare(doc["options"], spec, "")


def test_per_endpoint_options_and_defaults_come_from_the_client_defaults():
    assert tuple(mcp_check.endpoint_option_spec(top_level=False)) == PER_ENDPOINT_OPTIONS
    top = mcp_check.endpoint_option_spec(top_level=True)
    for option in PER_ENDPOINT_OPTIONS:
        assert top[option].get("default") == DEFAULTS[option], option


def test_short_query_values_do_not_corrupt_the_results(run, fake_checks):
    """A query value of 1 used to become a no_log value, masking every 1 in the output."""
    kind, result = run({"url": "https://a.example/mcp?v=1", "name": "a"})
    assert kind == "exit", result
    assert result["summary"] == {"total": 1, "up": 1, "down": 0, "healthy": 1, "unhealthy": 0}
    assert result["endpoints"][0]["tool_count"] == 1
    assert result["endpoints"][0]["url"] == "https://a.example/mcp?v=REDACTED"


def test_a_result_carrying_a_url_secret_keeps_it_out_of_the_invocation(fake_checks, capsys):
    args = {"url": "https://a.example/mcp?v=1"}
    if "inject_invocation" in PASS_VARS:
        args["_ansible_inject_invocation"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        mcp_check.main()
    output = json.loads(capsys.readouterr().out)
    assert output["invocation"]["module_args"]["url"] == "https://a.example/mcp?v=********"
    assert output["summary"]["total"] == 1 and output["endpoints"][0]["tool_count"] == 1


def test_metrics_changed_only_when_the_health_picture_changes(run, fake_checks, tmp_path, monkeypatch):
    path = tmp_path / "mcp.prom"
    args = {"url": "https://a.example/mcp", "name": "a", "textfile_path": str(path)}
    kind, result = run(args)
    assert kind == "exit" and result["changed"] is True
    first = path.read_text()
    # Same health, new timestamps and durations: the file is refreshed, the task is not changed.
    kind, result = run(args)
    assert result["changed"] is False
    second = path.read_text()
    assert second != first and "mcp_check_last_run_timestamp_seconds" in second

    real = mcp_check.run_checks

    def returning(update):
        def patched(configs, **kwargs):
            results = real(configs, **kwargs)
            for item in results:
                item.update(update)
            return results

        monkeypatch.setattr(mcp_check, "run_checks", patched)

    returning({"latency_ms": {"connect": 9.0, "total": 99.0}})
    assert run(args)[1]["changed"] is False  # latencies moved
    returning({"tools": ["other"]})
    assert run(args)[1]["changed"] is True  # same number of tools, another tool list
    assert run(args)[1]["changed"] is False
    returning({"server_info": {"name": "srv", "version": "2.0"}})
    assert run(args)[1]["changed"] is True  # server version
    returning({"up": False, "healthy": False, "failed_stage": "connect", "error": "refused", "failures": ["refused"]})
    kind, result = run({**args, "failure_policy": "never"})
    assert result["changed"] is True  # down


def test_metrics_file_keeps_owner_and_mode_through_atomic_move(run, fake_checks, tmp_path, monkeypatch):
    path = tmp_path / "mcp.prom"
    path.write_text("# an older file\n")
    path.chmod(0o600)
    moves = []
    original = mcp_check.AnsibleModule.atomic_move

    def atomic_move(self, src, dest, *args, **kwargs):
        moves.append(dest)
        return original(self, src, dest, *args, **kwargs)

    monkeypatch.setattr(mcp_check.AnsibleModule, "atomic_move", atomic_move)
    kind, result = run({"url": "https://a.example/mcp", "name": "a", "textfile_path": str(path)})
    assert kind == "exit" and result["changed"] is True
    assert moves == [str(path)]
    assert (path.stat().st_mode & 0o777) == 0o600
    assert path.stat().st_uid == tmp_path.stat().st_uid
    assert "mcp_endpoint_up" in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mcp.prom"]


def test_tls_min_version_per_endpoint_or_top_level(run, fake_checks):
    kind, result = run(
        {
            "endpoints": [
                {"url": "https://a.example/mcp", "name": "a"},
                {"url": "https://b.example/mcp", "name": "b", "tls_min_version": "TLSv1.2"},
            ],
            "tls_min_version": "TLSv1.3",
        }
    )
    assert kind == "exit", result
    a, b = fake_checks["configs"]
    assert a["tls_min_version"] == "TLSv1.3" and b["tls_min_version"] == "TLSv1.2"
    contexts = fake_checks["ssl_contexts"]
    assert contexts[0].minimum_version.name == "TLSv1_3" and contexts[1].minimum_version.name == "TLSv1_2"
    kind, result = run({"url": "https://a.example/mcp", "tls_min_version": "TLSv1.1"})
    assert kind == "fail" and "tls_min_version" in result["msg"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            {
                "url": "https://a.example/mcp",
                "oauth": {"client_id": "c", "client_secret": "sekrit", "private_key": "k"},
            },
            "oauth.private_key: cannot be combined with oauth.client_secret",
        ),
        (
            {
                "endpoints": [
                    {
                        "url": "https://a.example/mcp",
                        "oauth": {"client_id": "c", "client_secret": "sekrit", "token_url": "http://as.example/token"},
                    }
                ]
            },
            "endpoints[0].oauth.token_url: http://as.example/token is not an https:// URL",
        ),
        (
            {"url": "https://a.example/mcp", "oauth": {"client_id": "c", "client_secret": "sekrit", "scopes": "a b"}},
            "oauth.scopes: must be a list",
        ),
        (
            {"url": "https://a.example/mcp", "oauth": {"client_id": "c", "private_key": "-----BEGIN PRIVATE KEY-----"}},
            "oauth.private_key: the key is not a PEM private key",
        ),
        (
            {"url": "https://a.example/mcp", "bearer_token": "t", "oauth": {"client_id": "c", "client_secret": "x"}},
            "oauth: cannot be combined with bearer_token",
        ),
    ],
)
def test_bad_oauth_input_fails_before_any_request(run, fake_checks, args, fragment):
    kind, result = run(args)
    assert kind == "fail" and fragment in result["msg"], result["msg"]
    assert "sekrit" not in json.dumps(result)
    assert "configs" not in fake_checks


def test_oauth_applies_per_endpoint_or_from_the_top_level(run, fake_checks):
    kind, result = run(
        {
            "endpoints": [
                {"url": "https://a.example/mcp", "name": "a"},
                {"url": "https://b.example/mcp", "name": "b", "oauth": {"client_id": "b", "client_secret": "y"}},
            ],
            "oauth": {"client_id": "top", "client_secret": "x", "scopes": ["mcp"]},
        }
    )
    assert kind == "exit", result
    a, b = fake_checks["configs"]
    assert a["oauth"]["client_id"] == "top" and a["oauth"]["scopes"] == ["mcp"]
    assert b["oauth"]["client_id"] == "b" and b["oauth"]["scopes"] is None and b["oauth"]["auth_method"] == "auto"


@pytest.mark.parametrize("listed", [False, True])
def test_oauth_url_secrets_never_reach_the_invocation(fake_checks, capsys, listed):
    oauth = {
        "client_id": "monitor",
        "client_secret": "client-secret-0042",
        "token_url": "https://bob:tokpw-77@as.example/token?k=QSECRET-8",
        "authorization_server": "https://carol:aspw-78@as.example/?t=ASECRET-9",
        "resource": "https://r.example/mcp?rk=RSECRET-3",
    }
    args = {"endpoints": [{"url": "https://a.example/mcp", "oauth": oauth}]} if listed else {}
    if not listed:
        args = {"url": "https://a.example/mcp", "oauth": oauth}
    if "inject_invocation" in PASS_VARS:
        args["_ansible_inject_invocation"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        mcp_check.main()
    output = json.loads(capsys.readouterr().out)
    invocation = output["invocation"]["module_args"]
    shown = invocation["endpoints"][0]["oauth"] if listed else invocation["oauth"]
    assert shown["token_url"] == "https://bob:********@as.example/token?k=********"
    assert shown["authorization_server"] == "https://carol:********@as.example/?t=********"
    assert shown["resource"] == "https://r.example/mcp?rk=********"
    for secret in ("tokpw-77", "QSECRET-8", "aspw-78", "ASECRET-9", "RSECRET-3", "client-secret-0042"):
        assert secret not in json.dumps(output)

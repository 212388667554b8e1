"""roles/mcp_health/files/corvid_mcp_health.py: the scheduled check's configuration file.

Every mistake in the file stops the run with exit status 2 and a message naming the setting
(endpoints[N].option for one endpoint's); nothing is checked or written, no secret is printed.
The checks against real servers are in tests/functional/mcp/test_runner.py.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parents[3] / "roles" / "mcp_health" / "files" / "corvid_mcp_health.py"
TOKEN = "tok-3f9a0c1d5e"


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("corvid_mcp_health", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(tmp_path, settings):
    path = tmp_path / "mcp-health.json"
    path.write_text(json.dumps(settings) if not isinstance(settings, str) else settings)
    return str(path)


def good(**top):
    settings = {
        "endpoints": [
            {"name": "alpha", "url": "https://alpha.example/mcp", "bearer_token": TOKEN},
            {"name": "beta", "url": "http://beta.example/mcp", "timeout": 3, "expected_tools": ["search"]},
        ],
        "defaults": {"tls_min_version": "TLSv1.3"},
        "workers": 4,
    }
    settings.update(top)
    return settings


def test_a_good_configuration_is_valid_and_defaults_apply(runner, tmp_path, capsys):
    path = write(tmp_path, good())
    assert runner.main(["--config", path, "--check-config"]) == 0
    assert "2 endpoints, valid" in capsys.readouterr().out
    settings, configs, contexts = runner.load(path)
    assert settings["failure_policy"] == "any"
    assert configs[0]["tls_min_version"] == "TLSv1.3"
    assert configs[1]["timeout"] == 3.0
    assert sorted(contexts) == [0]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"workers": 0}, "workers: must be a whole number"),
        ({"workers": True}, "workers: must be a whole number"),
        ({"failure_policy": "some"}, "failure_policy: must be one of any, all, never"),
        ({"schedule": "5m"}, "schedule: is not a setting of the scheduled check"),
        ({"defaults": {"retries": 3}}, "defaults.retries: is not an option of mcp_check"),
        ({"defaults": {"validate_certs": "yes"}}, "validate_certs: must be true or false"),
        ({"defaults": []}, "defaults: must be a dictionary"),
        ({"endpoints": {"name": "alpha"}}, "endpoints: must be a list"),
        ({"endpoints": ["https://alpha.example/mcp"]}, "endpoints[0]: must be a dictionary with name and url"),
        ({"endpoints": [{"url": "https://a.example/mcp", "retries": 1}]}, "endpoints[0].retries: is not an option"),
        (
            {"endpoints": [{"url": "https://a.example/mcp", "transport": "udp"}]},
            "endpoints[0].transport: must be one of",
        ),
        ({"endpoints": [{"url": "https://a.example/mcp", "call_tool": {}}]}, "endpoints[0].call_tool: must be a dict"),
        ({"endpoints": [{"url": "gopher://a.example/"}]}, "endpoints[0].url:"),
        (
            {"endpoints": [{"url": "https://a.example/mcp", "client_key": "/k.pem"}]},
            "endpoints[0].client_key: needs client_cert",
        ),
        (
            {"endpoints": [{"url": "https://a.example/mcp"}, {"url": "https://a.example/mcp"}]},
            "endpoints 0 and 1 are both named",
        ),
        ({"metrics_labels": {"endpoint": "x"}}, "metrics_labels: label 'endpoint' is set by the module itself"),
        ({"metrics_labels": {"bad-name": "x"}}, "metrics_labels: 'bad-name' is not a valid Prometheus label name"),
    ],
)
def test_each_mistake_exits_2_naming_the_setting(runner, tmp_path, capsys, change, fragment):
    path = write(tmp_path, good(**change))
    assert runner.main(["--config", path, "--check-config"]) == runner.EXIT_CONFIG
    captured = capsys.readouterr()
    assert fragment in captured.err
    assert captured.out == ""
    assert TOKEN not in captured.err


@pytest.mark.parametrize(("content", "fragment"), [("{not json", "cannot read"), ("[1, 2]", "must be a JSON object")])
def test_a_file_that_is_not_a_json_object_exits_2(runner, tmp_path, capsys, content, fragment):
    assert runner.main(["--config", write(tmp_path, content)]) == runner.EXIT_CONFIG
    assert fragment in capsys.readouterr().err


def test_a_missing_file_exits_2(runner, tmp_path, capsys):
    assert runner.main(["--config", str(tmp_path / "absent.json")]) == runner.EXIT_CONFIG
    assert "cannot read" in capsys.readouterr().err


def test_a_textfile_outside_a_directory_exits_2_before_any_check(runner, tmp_path, capsys):
    path = write(tmp_path, good(textfile_path=str(tmp_path / "no-such-dir" / "mcp.prom")))
    assert runner.main(["--config", path]) == runner.EXIT_CONFIG
    assert "textfile_path" in capsys.readouterr().err

"""_mcp/metrics.py: Prometheus text rendering and the atomic textfile writer."""

from __future__ import annotations

import os
import re
import stat

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.metrics import (
    MetricsError,
    check_textfile_path,
    escape_label_value,
    render_metrics,
    write_textfile,
)

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? -?[0-9.e+-]+$')


def result(name, up=True, healthy=True, **extra):
    base = {
        "name": name,
        "url": f"https://{name}.example/mcp",
        "up": up,
        "healthy": healthy,
        "transport": "streamable_http" if up else None,
        "protocol_version": "2025-06-18" if up else None,
        "era": "handshake" if up else None,
        "server_info": {"name": f"{name}-server", "version": "1.0"} if up else None,
        "session": True,
        "tool_count": 3 if up else None,
        "missing_tools": [],
        "failed_stage": None,
        "http_status": None,
        "latency_ms": {
            "connect": 1.5,
            "tls": 2.25,
            "initialize": 10.0,
            "ping": None,
            "list": 4.0,
            "call": None,
            "total": 20.0,
        },
    }
    base.update(extra)
    return base


def test_render_families_and_samples():
    text = render_metrics(
        [
            result("perplexity"),
            result(
                "serena", up=False, healthy=False, failed_stage="connect", http_status=502, latency_ms={"total": 5.0}
            ),
        ],
        {"checker": "mon1"},
        timestamp=1700000000.5,
        duration=0.25,
    )
    lines = text.splitlines()
    assert text.endswith("\n")
    for line in lines:
        assert line.startswith("# ") or SAMPLE.match(line), line
    assert (
        'mcp_endpoint_up{checker="mon1",endpoint="perplexity",url="https://perplexity.example/mcp",'
        'transport="streamable_http"} 1' in lines
    )
    assert 'mcp_endpoint_up{checker="mon1",endpoint="serena",url="https://serena.example/mcp",transport=""} 0' in lines
    assert 'mcp_endpoint_latency_seconds{checker="mon1",endpoint="perplexity",stage="tls"} 0.00225' in lines
    assert 'mcp_endpoint_latency_seconds{checker="mon1",endpoint="serena",stage="total"} 0.005' in lines
    assert not any('stage="ping"' in line for line in lines)  # stages that did not run have no sample
    assert 'mcp_endpoint_tools{checker="mon1",endpoint="perplexity"} 3' in lines
    assert not any(line.startswith('mcp_endpoint_tools{checker="mon1",endpoint="serena"') for line in lines)
    assert 'mcp_endpoint_failure_info{checker="mon1",endpoint="serena",stage="connect"} 1' in lines
    assert 'mcp_endpoint_http_status{checker="mon1",endpoint="serena"} 502' in lines
    assert any(
        line.startswith("mcp_endpoint_protocol_info{")
        and 'protocol_version="2025-06-18"' in line
        and 'server_name="perplexity-server"' in line
        for line in lines
    )
    assert 'mcp_check_last_run_timestamp_seconds{checker="mon1"} 1700000000.5' in lines
    assert 'mcp_check_duration_seconds{checker="mon1"} 0.25' in lines
    # each family has exactly one HELP and TYPE, before its samples
    helps = [line.split()[2] for line in lines if line.startswith("# HELP")]
    assert len(helps) == len(set(helps))
    assert lines.index("# TYPE mcp_endpoint_up gauge") < lines.index(
        next(line for line in lines if line.startswith("mcp_endpoint_up{"))
    )


def test_label_values_are_escaped():
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    text = render_metrics([result('we"ird\\name')])
    assert 'endpoint="we\\"ird\\\\name"' in text


def test_empty_results_still_carry_the_run_metrics():
    text = render_metrics([], timestamp=1.0, duration=0.0)
    assert "mcp_endpoint_up" not in text
    assert "mcp_check_last_run_timestamp_seconds 1.0" in text


@pytest.mark.parametrize("labels", [{"bad-name": "x"}, {"__reserved": "x"}, {"endpoint": "x"}, {"1x": "y"}, ["x"]])
def test_bad_extra_labels(labels):
    with pytest.raises(MetricsError) as caught:
        render_metrics([result("a")], labels)
    assert caught.value.option == "metrics_labels"


def test_write_creates_replaces_and_skips_unchanged(tmp_path):
    path = tmp_path / "mcp.prom"
    changed, before = write_textfile(str(path), "a 1\n")
    assert changed and before is None
    assert path.read_text() == "a 1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o640)
    inode = path.stat().st_ino
    changed, before = write_textfile(str(path), "a 1\n")
    assert not changed and before == "a 1\n"
    assert path.stat().st_ino == inode  # untouched
    changed, before = write_textfile(str(path), "a 2\n")
    assert changed and before == "a 1\n"
    assert path.read_text() == "a 2\n"
    assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # mode kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mcp.prom"]  # no temp file left behind


def test_check_mode_does_not_write(tmp_path):
    path = tmp_path / "mcp.prom"
    changed, _before = write_textfile(str(path), "a 1\n", check_mode=True)
    assert changed and not path.exists()


def test_write_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "mcp.prom"

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_textfile(str(path), "a 1\n")
    assert list(tmp_path.iterdir()) == []


def test_check_textfile_path(tmp_path):
    check_textfile_path(str(tmp_path / "mcp.prom"))
    with pytest.raises(MetricsError, match="does not exist") as caught:
        check_textfile_path(str(tmp_path / "missing" / "mcp.prom"))
    assert caught.value.option == "textfile_path"
    with pytest.raises(MetricsError, match="is a directory"):
        check_textfile_path(str(tmp_path))
    with pytest.raises(MetricsError, match="must not be empty"):
        check_textfile_path("")


def test_tls_version_is_an_info_metric():
    text = render_metrics([result("a", tls_version="TLSv1.3"), result("b")])
    assert 'mcp_endpoint_tls_info{endpoint="a",tls_version="TLSv1.3"} 1' in text.splitlines()
    assert 'endpoint="b",tls_version' not in text
    with pytest.raises(MetricsError):
        render_metrics([result("a")], {"tls_version": "x"})

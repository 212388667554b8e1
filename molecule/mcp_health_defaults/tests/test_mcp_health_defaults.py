"""Real state of the mcp_health role with defaults only: no endpoints, the run's metrics written."""


def test_metrics_file_written_for_an_empty_run(host):
    metrics = host.file("/var/lib/prometheus/node-exporter/mcp.prom")
    assert metrics.exists
    assert metrics.mode == 0o644
    content = metrics.content_string
    assert "mcp_" in content
    assert "mcp_endpoint_up{" not in content

# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Prometheus text-format metrics for MCP endpoint checks, and an atomic writer for node_exporter's
textfile collector. Standard library only.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import contextlib
import hashlib
import os
import re
import tempfile

from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import LATENCY_STAGES
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import OptionError

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = frozenset(
    (
        "endpoint",
        "url",
        "transport",
        "stage",
        "protocol_version",
        "era",
        "server_name",
        "server_version",
        "session",
        "tls_version",
    )
)

FAMILIES = (
    ("mcp_endpoint_up", "1 when the endpoint answered the MCP handshake and tools/list, else 0."),
    ("mcp_endpoint_healthy", "1 when the endpoint is up and every assertion of the check passed, else 0."),
    ("mcp_endpoint_latency_seconds", "Duration of each check stage (total = the whole check), in seconds."),
    ("mcp_endpoint_tools", "Number of tools the endpoint lists."),
    ("mcp_endpoint_expected_tools_missing", "Number of expected tools the endpoint does not list."),
    ("mcp_endpoint_protocol_info", "Negotiated protocol version, transport and server identity (value 1)."),
    (
        "mcp_endpoint_stream_resumptions",
        "Times the check resumed an SSE response stream (GET with Last-Event-ID) that ended before its answer.",
    ),
    ("mcp_endpoint_tls_info", "Negotiated TLS version (value 1; absent for plain HTTP)."),
    ("mcp_endpoint_failure_info", "The stage at which the check failed (value 1; absent when healthy)."),
    ("mcp_endpoint_http_status", "HTTP status of the failing request, or of the last request when none failed."),
    ("mcp_check_last_run_timestamp_seconds", "When the check run finished, as a Unix timestamp."),
    ("mcp_check_duration_seconds", "Wall time of the whole check run, in seconds."),
)
# Families whose values move on every run without saying anything about health.
VOLATILE_FAMILIES = (
    "mcp_endpoint_latency_seconds",
    "mcp_endpoint_stream_resumptions",
    "mcp_check_last_run_timestamp_seconds",
    "mcp_check_duration_seconds",
)
# A comment line per endpoint with a digest of its tool list (Prometheus ignores comments), so a
# changed tool list changes the file's health picture even when the number of tools stays the same.
TOOLS_COMMENT = "# mcp_check tools"


class MetricsError(OptionError):
    """A metrics option cannot be used; ``option`` names it, ``message`` says why."""


def escape_label_value(value):
    """Escape a label value as the text exposition format requires."""
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_labels(pairs):
    if not pairs:
        return ""
    return "{%s}" % ",".join('%s="%s"' % (name, escape_label_value(value)) for name, value in pairs)


def format_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def validate_extra_labels(labels, option="metrics_labels"):
    if not labels:
        return []
    if not isinstance(labels, dict):
        raise MetricsError(option, "must be a dictionary of label names to values")
    pairs = []
    for name in sorted(labels):
        if not isinstance(name, str) or not LABEL_NAME.match(name) or name.startswith("__"):
            raise MetricsError(option, "%r is not a valid Prometheus label name" % (name,))
        if name in RESERVED_LABELS:
            raise MetricsError(option, "label %r is set by the module itself" % name)
        pairs.append((name, labels[name]))
    return pairs


def render_metrics(results, extra_labels=None, timestamp=None, duration=None):
    """Render check results (the dicts of check.EndpointCheck.run) as Prometheus text exposition format."""
    extra = validate_extra_labels(extra_labels)
    samples = dict((name, []) for name, _help in FAMILIES)
    for result in results:
        endpoint = [*extra, ("endpoint", result["name"])]
        samples["mcp_endpoint_up"].append(
            ([*endpoint, ("url", result["url"]), ("transport", result.get("transport") or "")], bool(result["up"]))
        )
        samples["mcp_endpoint_healthy"].append((endpoint, bool(result["healthy"])))
        latency = result.get("latency_ms") or {}
        for stage in LATENCY_STAGES:
            if latency.get(stage) is not None:
                samples["mcp_endpoint_latency_seconds"].append(
                    ([*endpoint, ("stage", stage)], round(latency[stage] / 1000.0, 6))
                )
        if result.get("tool_count") is not None:
            samples["mcp_endpoint_tools"].append((endpoint, int(result["tool_count"])))
        samples["mcp_endpoint_expected_tools_missing"].append((endpoint, len(result.get("missing_tools") or [])))
        if result.get("protocol_version"):
            info = result.get("server_info") or {}
            labels = [
                *endpoint,
                ("protocol_version", result["protocol_version"]),
                ("era", result.get("era") or ""),
                ("transport", result.get("transport") or ""),
                ("server_name", info.get("name") or ""),
                ("server_version", info.get("version") or ""),
                ("session", "true" if result.get("session") else "false"),
            ]
            samples["mcp_endpoint_protocol_info"].append((labels, 1))
        if result.get("resumptions") is not None:
            samples["mcp_endpoint_stream_resumptions"].append((endpoint, int(result["resumptions"])))
        if result.get("tls_version"):
            samples["mcp_endpoint_tls_info"].append(([*endpoint, ("tls_version", result["tls_version"])], 1))
        if result.get("failed_stage"):
            samples["mcp_endpoint_failure_info"].append(([*endpoint, ("stage", result["failed_stage"])], 1))
        if result.get("http_status") is not None:
            samples["mcp_endpoint_http_status"].append((endpoint, int(result["http_status"])))
    if timestamp is not None:
        samples["mcp_check_last_run_timestamp_seconds"].append((extra, round(float(timestamp), 3)))
    if duration is not None:
        samples["mcp_check_duration_seconds"].append((extra, round(float(duration), 6)))
    lines = []
    for name, help_text in FAMILIES:
        if not samples[name]:
            continue
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s gauge" % name)
        for labels, value in samples[name]:
            lines.append("%s%s %s" % (name, format_labels(labels), format_value(value)))
    for result in results:
        if result.get("tools") is not None:
            digest = hashlib.sha256("\n".join(sorted(result["tools"])).encode("utf-8")).hexdigest()[:16]
            lines.append("%s%s sha256:%s" % (TOOLS_COMMENT, format_labels([("endpoint", result["name"])]), digest))
    return "\n".join(lines) + "\n"


def health_picture(content):
    """What the metrics text says about health: its lines without latencies, timestamps and durations
    (and without HELP and TYPE lines). Two runs with the same picture are not a change."""
    if content is None:
        return None
    picture = []
    for line in content.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")) or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in VOLATILE_FAMILIES:
            continue
        picture.append(line)
    return sorted(picture)


def check_textfile_path(path, option="textfile_path"):
    """Raise MetricsError unless ``path`` can be written: its directory exists and is writable."""
    if not path:
        raise MetricsError(option, "must not be empty")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise MetricsError(option, "the directory %s does not exist" % directory)
    if os.path.isdir(path):
        raise MetricsError(option, "%s is a directory; name the file to write (for example mcp.prom)" % path)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise MetricsError(option, "the directory %s is not writable" % directory)


def read_textfile(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_textfile(path, content, check_mode=False, move=None):
    """Replace ``path`` with ``content`` atomically (temp file in the same directory, fsync, rename).

    Returns ``(changed, before)``: ``changed`` is true when the health picture (see :func:`health_picture`)
    differs from the file's, so fresh latencies and timestamps alone are not a change. The file is still
    rewritten whenever its content differs, except in check mode. ``move(src, dest)`` does the rename:
    pass ``AnsibleModule.atomic_move`` so an existing file keeps its owner, mode and SELinux context;
    without it, ``os.replace`` after copying the old mode. The temporary file starts with a dot and does
    not end in ``.prom``, so node_exporter never reads a half-written file.
    """
    before = read_textfile(path)
    changed = health_picture(before) != health_picture(content)
    if before == content or check_mode:
        return changed, before
    directory = os.path.dirname(os.path.abspath(path))
    handle, temp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        if move is not None:
            move(temp_path, path)
        else:
            try:
                mode = os.stat(path).st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o644
            os.chmod(temp_path, mode)
            os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise
    return changed, before

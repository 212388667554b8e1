# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The scheduled MCP endpoint check of the mcp_health role (its `schedule` entry point).

Checks every endpoint of a JSON configuration with the collection's own MCP client (the
``_mcp`` package of plugins/module_utils, installed beside this file by the role: the
directory of a script is the first entry of Python's path, so nothing else is needed) and
writes the same Prometheus metrics as the corvid.platform.mcp_check module, atomically, into
node_exporter's textfile directory. One line per endpoint goes to stdout (the journal);
bearer tokens, header values and client secrets never do.

    corvid_mcp_health.py --config /etc/corvid/mcp-health.json           # check, write, report
    corvid_mcp_health.py --config FILE --check-config                    # validate only

The configuration (written by the role, root-only)::

    {"endpoints": [{"name": ..., "url": ..., <per-endpoint options of mcp_check>}],
     "defaults": {<the module's top-level options: timeout, tls_min_version, oauth, ...>},
     "workers": 16, "failure_policy": "any", "textfile_path": "/var/lib/...", "metrics_labels": {}}

Exit status: 0 when the run passes the failure policy (``any``: every endpoint healthy;
``all``: at least one; ``never``), 1 when it does not (the metrics are written all the same),
2 when the configuration is wrong (nothing is checked or written).
"""

import argparse
import json
import sys
import time

from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import (
    DEFAULTS,
    KNOWN_VERSIONS,
    PER_ENDPOINT_OPTIONS,
    PROTOCOL_CHOICES,
    TLS_VERSIONS,
    TRANSPORTS,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ConfigError, OptionError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.metrics import (
    check_textfile_path,
    render_metrics,
    validate_extra_labels,
    write_textfile,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.options import (
    check_unique_names,
    ssl_contexts_for,
    validate_endpoint,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.runner import run_checks

TOP_LEVEL = ("endpoints", "defaults", "workers", "failure_policy", "textfile_path", "metrics_labels")
POLICIES = ("any", "all", "never")
CHOICES = {
    "transport": TRANSPORTS,
    "protocol_version": PROTOCOL_CHOICES,
    "tls_min_version": TLS_VERSIONS,
    "min_protocol_version": KNOWN_VERSIONS,
}
BOOLEANS = ("validate_certs", "ping", "list_resources", "list_prompts")
STRINGS = ("ca_path", "client_cert", "client_key")
EXIT_CONFIG = 2


def _check_option(option, value):
    """The type checks the module's argument spec makes, for one per-endpoint option."""
    if value is None:
        return None
    if option in CHOICES and value not in CHOICES[option]:
        raise ConfigError(option, f"must be one of {', '.join(CHOICES[option])}, got {value!r}")
    if option in BOOLEANS and not isinstance(value, bool):
        raise ConfigError(option, "must be true or false")
    if option in STRINGS and not isinstance(value, str):
        raise ConfigError(option, "must be a path")
    if option == "timeout" and not isinstance(value, bool) and isinstance(value, int):
        return float(value)
    if option == "call_tool" and (not isinstance(value, dict) or not value.get("name")):
        raise ConfigError(option, "must be a dictionary with the tool's name")
    return value


def build_configs(settings):
    """Normalised endpoint configs, validated with the checks of the mcp_check module."""
    defaults = dict(DEFAULTS)
    given = settings.get("defaults")
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise ConfigError("defaults", "must be a dictionary")
    for option, value in given.items():
        if option not in PER_ENDPOINT_OPTIONS:
            raise ConfigError("defaults." + option, "is not an option of mcp_check")
        if value is not None:
            defaults[option] = _check_option(option, value)
    endpoints = settings.get("endpoints") or []
    if not isinstance(endpoints, list):
        raise ConfigError("endpoints", "must be a list")
    configs = []
    for index, endpoint in enumerate(endpoints):
        prefix = f"endpoints[{index}]."
        if not isinstance(endpoint, dict):
            raise ConfigError(f"endpoints[{index}]", "must be a dictionary with name and url")
        unknown = sorted(set(endpoint) - set(PER_ENDPOINT_OPTIONS) - {"name", "url"})
        if unknown:
            raise ConfigError(prefix + unknown[0], "is not an option of mcp_check")
        config = {"url": endpoint.get("url"), "name": endpoint.get("name")}
        try:
            for option in PER_ENDPOINT_OPTIONS:
                value = _check_option(option, endpoint.get(option))
                config[option] = value if value is not None else defaults[option]
        except ConfigError as exc:
            raise exc.prefixed(prefix) from None
        validate_endpoint(config, prefix)
        configs.append(config)
    check_unique_names(configs)
    return configs


def load(path):
    """The checked settings, configs and SSL contexts of the configuration file ``path``."""
    try:
        with open(path, encoding="utf-8") as handle:
            settings = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError("config", f"cannot read {path}: {exc}") from None
    if not isinstance(settings, dict):
        raise ConfigError("config", "must be a JSON object")
    unknown = sorted(set(settings) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(unknown[0], "is not a setting of the scheduled check")
    workers = settings.setdefault("workers", 16)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError("workers", "must be a whole number of at least 1")
    if settings.setdefault("failure_policy", "any") not in POLICIES:
        raise ConfigError("failure_policy", f"must be one of {', '.join(POLICIES)}")
    validate_extra_labels(settings.get("metrics_labels"))
    configs = build_configs(settings)
    return settings, configs, ssl_contexts_for(configs)


def report_line(result):
    """One line about one endpoint, as the role's report prints it; never a secret (results are masked)."""
    if result["healthy"]:
        line = f"{result['name']}: up, {result.get('protocol_version')} over {result.get('transport')}"
        if result.get("tls_version"):
            line += f" ({result['tls_version']})"
        total = (result.get("latency_ms") or {}).get("total") or 0.0
        return line + f", {result.get('tool_count')} tools, {total:.1f} ms"
    state = "up but UNHEALTHY" if result["up"] else "DOWN"
    return f"{result['name']}: {state} at {result['failed_stage']}: {result['error']}"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check MCP endpoints and write Prometheus textfile metrics.")
    parser.add_argument("--config", required=True, help="the JSON configuration (root-only: it holds tokens)")
    parser.add_argument("--check-config", action="store_true", help="validate the configuration and exit")
    args = parser.parse_args(argv)
    try:
        settings, configs, contexts = load(args.config)
        path = settings.get("textfile_path") or None
        if path is not None:
            check_textfile_path(path)
    except OptionError as exc:
        print(f"mcp-health: configuration {args.config}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check_config:
        print(f"mcp-health: configuration {args.config}: {len(configs)} endpoints, valid")
        return 0

    started = time.monotonic()
    results = run_checks(configs, workers=settings["workers"], ssl_contexts=contexts)
    elapsed = time.monotonic() - started
    for result in results:
        print(report_line(result))
    healthy = sum(1 for result in results if result["healthy"])
    print(f"mcp-health: {healthy} of {len(results)} endpoints healthy in {elapsed:.2f} s")
    if path is not None:
        content = render_metrics(results, settings.get("metrics_labels"), timestamp=time.time(), duration=elapsed)
        try:
            write_textfile(path, content)
        except OSError as exc:
            print(f"mcp-health: cannot write {path}: {exc}", file=sys.stderr)
            return 1
    policy = settings["failure_policy"]
    if (policy == "any" and healthy < len(results)) or (policy == "all" and results and healthy == 0):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

DOCUMENTATION = r"""
---
module: mcp_check
short_description: Check that MCP (Model Context Protocol) servers are up and speak MCP correctly
version_added: 0.1.0
author:
  - corvid platform engineering (@corvid)
description:
  - Connects to one or many remote MCP servers over HTTP, runs the protocol handshake, lists their tools
    (following pagination), optionally pings them, lists resources and prompts and calls one tool, and reports,
    for every endpoint, whether it is up, where it failed, the negotiated protocol version, server identity,
    capabilities, tool names and the time each stage took.
  - Speaks the Streamable HTTP transport (JSON or event-stream answers, C(Mcp-Session-Id) sessions,
    C(MCP-Protocol-Version) header, session deletion) and the legacy HTTP+SSE transport of 2024-11-05.
    With O(transport=auto) it tries Streamable HTTP first and falls back to the legacy transport when the
    server answers the first POST with HTTP 400, 404 or 405, as the specification describes.
  - Negotiates protocol versions 2024-11-05, 2025-03-26, 2025-06-18 and 2025-11-25 with the C(initialize)
    handshake, and recognises servers of the sessionless 2026-07-28 revision (no C(initialize), no session,
    C(server/discover) instead) rather than reporting them as broken.
  - When the event stream of a Streamable HTTP response ends or breaks before the answer, after the server
    handed out event ids, the stream is resumed with a C(GET) carrying C(Last-Event-ID), after the server's
    C(retry) interval and within the endpoint's timeout (RV(endpoints[].resumptions) counts the resumptions).
  - Many endpoints are checked at the same time by a bounded pool of worker threads. Every endpoint has a hard
    overall timeout; a server that stalls, closes the connection mid-stream or never answers is reported as
    down, it never hangs the task.
  - An unreachable or failing endpoint is a result (RV(endpoints[].up=false) with the reason), not a module
    failure; O(failure_policy) decides whether unhealthy endpoints fail the task.
  - With O(textfile_path) the results are also written, atomically, as Prometheus metrics for the textfile
    collector of node_exporter.
  - Runs on the managed host with the Python standard library only.
  - Bearer tokens and header values are never logged and never returned.
extends_documentation_fragment:
  - corvid.platform.attributes
attributes:
  check_mode:
    support: full
    details:
      - The checks run in check mode too (they change nothing on the servers, unless O(call_tool) names a tool
        with side effects); only the metrics file is not written.
  diff_mode:
    support: full
    details:
      - Shows the old and new content of the metrics file.
  idempotent:
    support: partial
    details:
      - Without O(textfile_path) the module changes nothing and never reports a change.
      - With O(textfile_path) the file is rewritten on every run, since its latencies and timestamps are
        fresh each time, but the task reports a change only when the health the file records changes (an
        endpoint up or down, healthy or not, its protocol version or server identity, its tool list).
options:
  url:
    description:
      - URL of the one MCP endpoint to check, C(http://) or C(https://).
      - For Streamable HTTP this is the MCP endpoint (often ending in C(/mcp)); for the legacy transport the
        URL of the event stream (often ending in C(/sse)).
      - User information in the URL (C(https://user:pass@host/mcp)) is sent as HTTP basic authentication unless
        O(bearer_token) or an C(Authorization) header is given; it never appears in results.
      - The password and the query values of the URL are treated as secrets. Results and metrics carry the URL
        without user information and with query values masked; the module arguments Ansible logs show it with
        the password and the query values masked, once the options have passed Ansible's type and choice checks.
      - The URL must not contain spaces, control characters or characters outside ASCII; percent-encode them.
      - Mutually exclusive with O(endpoints); one of the two is required.
    type: str
  name:
    description:
      - Name of the endpoint given with O(url), used in results and as the C(endpoint) label of the metrics.
      - Defaults to the URL without user information and with query values masked.
    type: str
  endpoints:
    description:
      - Endpoints to check in one run. Every element takes O(url), O(name) and the per-endpoint options below;
        an option an element does not set takes the value of the top-level option of the same name.
      - Endpoint names (explicit or derived from the URL) must be unique.
    type: list
    elements: dict
    suboptions:
      url:
        description: URL of the endpoint, as for the top-level O(url).
        type: str
        required: true
      name:
        description: Name of the endpoint, as for the top-level O(name).
        type: str
      transport:
        description: Transport for this endpoint. Defaults to the top-level O(transport).
        type: str
        choices: [auto, streamable_http, sse]
      protocol_version:
        description: Protocol version to offer. Defaults to the top-level O(protocol_version).
        type: str
        choices: [auto, "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
      bearer_token:
        description: Bearer token for this endpoint. Defaults to the top-level O(bearer_token).
        type: str
      headers:
        description: Extra HTTP headers for this endpoint (replace the top-level O(headers) entirely).
        type: dict
      timeout:
        description: Overall timeout in seconds. Defaults to the top-level O(timeout).
        type: float
      validate_certs:
        description: Whether to verify the server certificate. Defaults to the top-level O(validate_certs).
        type: bool
      ca_path:
        description: CA bundle for this endpoint. Defaults to the top-level O(ca_path).
        type: path
      client_cert:
        description: Client certificate for this endpoint. Defaults to the top-level O(client_cert).
        type: path
      client_key:
        description: Key of the client certificate. Defaults to the top-level O(client_key).
        type: path
      tls_min_version:
        description: Lowest TLS version to accept. Defaults to the top-level O(tls_min_version).
        type: str
        choices: [TLSv1.2, TLSv1.3]
      oauth:
        description: OAuth client credentials for this endpoint, as the top-level O(oauth) (which it replaces).
        type: dict
        suboptions:
          client_id:
            description: The client id.
            type: str
            required: true
          client_secret:
            description: The client secret (C(client_secret_basic) or C(client_secret_post)).
            type: str
          private_key:
            description: PEM private key, or the path of a PEM file on the managed host (C(private_key_jwt)).
            type: str
          private_key_id:
            description: The C(kid) header of the client assertion.
            type: str
          auth_method:
            description: How the client authenticates at the token endpoint.
            type: str
            choices: [auto, client_secret_basic, client_secret_post, private_key_jwt]
            default: auto
          scopes:
            description: Scopes to ask for (a list of strings).
            type: raw
          resource:
            description: The C(resource) to ask a token for, instead of the one the metadata names.
            type: str
          authorization_server:
            description: The issuer URL of the authorization server to use, instead of the first one listed.
            type: str
          token_url:
            description: The token endpoint; skips discovery.
            type: str
          allow_http:
            description: Allow C(http://) authorization servers and token endpoints (a lab only).
            type: bool
            default: false
      expected_tools:
        description: Tools this endpoint must list. Defaults to the top-level O(expected_tools).
        type: raw
      min_protocol_version:
        description: Oldest acceptable protocol version. Defaults to the top-level O(min_protocol_version).
        type: str
        choices: ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
      max_latency_ms:
        description: Latency budget in milliseconds. Defaults to the top-level O(max_latency_ms).
        type: float
      ping:
        description: Whether to send C(ping). Defaults to the top-level O(ping).
        type: bool
      list_resources:
        description: Whether to list resources. Defaults to the top-level O(list_resources).
        type: bool
      list_prompts:
        description: Whether to list prompts. Defaults to the top-level O(list_prompts).
        type: bool
      call_tool:
        description: Smoke call for this endpoint, as the top-level O(call_tool) (which it replaces).
        type: dict
        suboptions:
          name:
            description: Name of the tool to call.
            type: str
            required: true
          arguments:
            description: Arguments of the call.
            type: dict
            default: {}
          expected_text:
            description: Text the text content of the result must contain.
            type: str
          expected_structured:
            description: Keys and values the structured content of the result must contain.
            type: dict
  transport:
    description:
      - V(streamable_http) speaks the Streamable HTTP transport only, V(sse) the legacy HTTP+SSE transport only.
      - V(auto) tries Streamable HTTP and falls back to the legacy transport when the first POST is answered with
        HTTP 400, 404 or 405 (but not 401 or 403).
    type: str
    choices: [auto, streamable_http, sse]
    default: auto
  protocol_version:
    description:
      - Protocol version to offer in C(initialize); the server may answer with another version it supports,
        which is accepted when the module speaks it (see O(min_protocol_version) to set a floor).
      - V(auto) offers the newest handshake version (2025-11-25); when the server refuses C(initialize) with a
        JSON-RPC error it probes C(server/discover) to recognise a 2026-07-28 server.
      - V(2026-07-28) skips the handshake and talks to the server in the sessionless revision directly.
    type: str
    choices: [auto, "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
    default: auto
  bearer_token:
    description:
      - Sent as an C(Authorization) header with the C(Bearer) scheme. Never logged, never returned.
      - For tokens that expire, see O(oauth).
      - Must be ASCII without line breaks (a YAML block scalar adds a trailing one; use C(>-) or C(|-)).
      - Whatever a server sends back is masked for this token, the URL password, the C(Basic) credentials
        made from them and O(headers) values before it goes into the results.
      - On a 401 or 403 answer the result carries the C(WWW-Authenticate) header and the C(resource_metadata)
        URL it names, so an expired or wrong token is easy to tell from a broken server.
    type: str
  headers:
    description:
      - Extra HTTP headers sent with every request, for example an API key header of a gateway.
      - The values are treated as secrets (never logged, masked in output); avoid very short values, as every
        occurrence of a secret value is masked in the task output.
      - Values must be ASCII without line breaks or other control characters.
    type: dict
  timeout:
    description:
      - Hard overall timeout in seconds for checking one endpoint, all stages together. A stalled or silent
        server is reported as down when it runs out.
      - A finite number greater than 0 and at most 3600.
    type: float
    default: 10
  validate_certs:
    description:
      - Whether to verify the server certificate and host name for C(https://) URLs.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificates to trust instead of the system store.
    type: path
  client_cert:
    description:
      - PEM file with a client certificate (and its key, unless O(client_key) is given) for mutual TLS.
    type: path
  client_key:
    description:
      - PEM file with the private key of O(client_cert).
    type: path
  tls_min_version:
    description:
      - Lowest TLS version the client accepts for C(https://) URLs; a server that offers only older versions
        fails the check at stage V(tls), with a message that names this option.
      - V(TLSv1.3) for servers that must speak TLS 1.3 only (the platform's own endpoints do).
      - The negotiated version is returned as RV(endpoints[].tls_version) and written to the metrics as
        C(mcp_endpoint_tls_info).
    type: str
    choices: [TLSv1.2, TLSv1.3]
    default: TLSv1.2
  oauth:
    description:
      - OAuth 2.1 client credentials (the C(client_credentials) grant) for servers behind an authorization server,
        as the MCP authorization specification describes. Mutually exclusive with O(bearer_token).
      - "Discovery: the first request goes without a token; the C(resource_metadata) of the 401's
        C(WWW-Authenticate) (else the well-known URLs of RFC 9728) names the protected resource metadata, whose
        first authorization server (or O(oauth.authorization_server)) has its metadata at the RFC 8414 or
        OpenID Connect well-known URLs. O(oauth.token_url) skips discovery."
      - The token request carries the C(resource) parameter (RFC 8707) and the scopes of O(oauth.scopes), else
        those of the challenge, else the C(scopes_supported) of the protected resource metadata.
      - One token is fetched per authorization server, client, resource and scopes in a task and reused by every
        endpoint that shares them; a token past its C(expires_in) is fetched anew, and a token the server refuses
        is replaced once. A fresh token the server refuses fails the check, with what the token's claims say
        (audience, expiry) when it is a JWT.
      - Failures of discovery are reported at stage V(auth_discovery), of the token request at stage V(token)
        with the server's OAuth C(error) and C(error_description) in RV(endpoints[].oauth_error).
      - The endpoint's TLS options (O(ca_path), O(validate_certs), O(client_cert), O(tls_min_version)) apply to
        the authorization server too. Redirects are not followed.
      - The client secret, the private key, the signed assertion and the access token are never logged, returned
        or written to the metrics file.
      - A server can name any authorization server in its metadata, and the client credentials go to it; pin
        O(oauth.authorization_server) (or O(oauth.token_url)) when the servers checked are not all trusted.
    type: dict
    suboptions:
      client_id:
        description: The client id registered at the authorization server.
        type: str
        required: true
      client_secret:
        description:
          - The client secret, for C(client_secret_basic) or C(client_secret_post). Never logged, never returned.
          - Mutually exclusive with O(oauth.private_key).
        type: str
      private_key:
        description:
          - For C(private_key_jwt) (RFC 7523) - the PEM private key (from Ansible Vault, say), or the path of a
            PEM file on the managed host. Unencrypted PKCS#8, PKCS#1 RSA (2048 bits or more, signed RS256) or
            SEC 1 EC on P-256 (signed ES256). Signed with the Python standard library. Never logged.
          - Mutually exclusive with O(oauth.client_secret).
        type: str
      private_key_id:
        description: The C(kid) header of the client assertion, when the authorization server needs it.
        type: str
      auth_method:
        description:
          - How the client authenticates at the token endpoint.
          - V(auto) uses V(private_key_jwt) with O(oauth.private_key); with O(oauth.client_secret),
            V(client_secret_basic) unless the metadata lists only V(client_secret_post).
        type: str
        choices: [auto, client_secret_basic, client_secret_post, private_key_jwt]
        default: auto
      scopes:
        description: Scopes to ask for, a list of strings; by default those of the challenge or the metadata.
        type: raw
      resource:
        description:
          - The C(resource) (RFC 8707) to ask the token for. Defaults to the C(resource) of the protected
            resource metadata (which must be the endpoint's URL or a prefix of it), or the endpoint's URL with
            O(oauth.token_url).
        type: str
      authorization_server:
        description: The issuer URL of the authorization server to use, instead of the first one the protected
          resource metadata lists.
        type: str
      token_url:
        description: The token endpoint of the authorization server; skips discovery (no 401 needed).
        type: str
      allow_http:
        description:
          - Allow C(http://) authorization servers and token endpoints. The credentials then cross the network in
            clear text; for a lab only. Without it such a URL is an option error (given) or an
            V(auth_discovery) failure (discovered).
        type: bool
        default: false
  expected_tools:
    description:
      - List of tool names the server must list; a missing one makes the endpoint unhealthy (stage V(list)).
      - Must be a list; a plain string is refused rather than split.
    type: raw
  min_protocol_version:
    description:
      - Oldest acceptable negotiated protocol version; an older one makes the endpoint unhealthy.
    type: str
    choices: ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
  max_latency_ms:
    description:
      - Budget in milliseconds for the whole check of an endpoint; a slower check makes it unhealthy
        (stage V(latency)) even though it is up.
      - A finite number greater than 0.
    type: float
  ping:
    description:
      - Whether to send C(ping). A server that does not implement it (method not found) is not unhealthy; the
        2026-07-28 revision has no C(ping), so it is skipped there.
    type: bool
    default: true
  list_resources:
    description:
      - Whether to list resources as well (when the server has the resources capability).
    type: bool
    default: false
  list_prompts:
    description:
      - Whether to list prompts as well (when the server has the prompts capability).
    type: bool
    default: false
  call_tool:
    description:
      - A smoke C(tools/call) after listing. The endpoint is unhealthy (stage V(call)) when the tool is not
        listed, the call fails or returns an error result, or the result does not match.
      - Pick a tool without side effects; the call is made in check mode as well.
    type: dict
    suboptions:
      name:
        description: Name of the tool to call.
        type: str
        required: true
      arguments:
        description: Arguments of the call.
        type: dict
        default: {}
      expected_text:
        description: Text the text content of the result must contain.
        type: str
      expected_structured:
        description: Keys and values (compared recursively) the structured content of the result must contain.
        type: dict
  workers:
    description:
      - How many endpoints are checked at the same time.
    type: int
    default: 16
  failure_policy:
    description:
      - When the task fails.
      - V(any) fails it when at least one endpoint is not healthy (down, or an assertion failed).
      - V(all) fails it only when no endpoint is healthy.
      - V(never) only reports; use the results or the metrics to act.
    type: str
    choices: [any, all, never]
    default: any
  textfile_path:
    description:
      - Write the results as Prometheus text-format metrics to this file, for the textfile collector of
        node_exporter (whose directory it should be in, for example
        C(/var/lib/prometheus/node-exporter/mcp.prom); the collector only reads files ending in C(.prom)).
      - The file is replaced atomically, and only when its content changes; it is not written in check mode.
        An existing file keeps its owner, mode and SELinux context.
      - The task reports C(changed) only when the health the file records changes (an endpoint up or down,
        healthy or not, the protocol version, the server identity, the tool list), not when only latencies
        and timestamps moved. A comment line per endpoint carries a digest of its tool list.
      - The directory must exist.
      - The metrics are C(mcp_endpoint_up), C(mcp_endpoint_healthy), C(mcp_endpoint_latency_seconds) (label
        C(stage)), C(mcp_endpoint_tools), C(mcp_endpoint_expected_tools_missing), C(mcp_endpoint_protocol_info),
        C(mcp_endpoint_stream_resumptions), C(mcp_endpoint_tls_info) (label C(tls_version)),
        C(mcp_endpoint_failure_info), C(mcp_endpoint_http_status), C(mcp_check_last_run_timestamp_seconds) and
        C(mcp_check_duration_seconds). Like latencies, a changed number of resumptions alone is not a change.
    type: path
  metrics_labels:
    description:
      - Extra labels added to every metric, for example C(checker) or C(environment).
    type: dict
seealso:
  - name: Model Context Protocol specification
    description: The protocol the module speaks.
    link: https://modelcontextprotocol.io/specification
  - name: node_exporter textfile collector
    description: How node_exporter exposes metrics written to files.
    link: https://github.com/prometheus/node_exporter#textfile-collector
notes:
  - Redirects are not followed; a redirect is reported with its target so the URL can be corrected.
  - Server-to-client requests arriving before a response (for example sampling or elicitation) are answered with
    "method not found", and C(ping) from the server with a pong; notifications are counted and ignored.
  - On Linux the client acknowledges TCP segments at once (C(TCP_QUICKACK)), so delayed ACKs are not measured as
    server latency.
"""

EXAMPLES = r"""
- name: Check one streamable HTTP endpoint
  corvid.platform.mcp_check:
    url: https://mcp.example.com/mcp
    bearer_token: "{{ vault_mcp_token }}"
    expected_tools: [search]

- name: Check the Perplexity and Serena MCP servers, write metrics, report only
  corvid.platform.mcp_check:
    endpoints:
      - name: perplexity
        url: https://perplexity-mcp.internal.example/mcp
        bearer_token: "{{ vault_perplexity_mcp_token }}"
        expected_tools: [perplexity_ask, perplexity_research, perplexity_reason]
        max_latency_ms: 2000
      - name: serena
        url: http://serena.internal.example:9121/sse
        transport: sse
        expected_tools: [find_symbol, get_symbols_overview]
    timeout: 5
    failure_policy: never
    textfile_path: /var/lib/prometheus/node-exporter/mcp.prom
    metrics_labels:
      checker: "{{ inventory_hostname }}"
  register: mcp_health

- name: Require a recent protocol and a working tool
  corvid.platform.mcp_check:
    url: https://mcp.example.com/mcp
    min_protocol_version: "2025-06-18"
    call_tool:
      name: echo
      arguments:
        text: ping
      expected_text: ping

- name: An OAuth-protected server, client credentials from the vault
  corvid.platform.mcp_check:
    url: https://mcp.example.com/mcp
    oauth:
      client_id: corvid-monitor
      client_secret: "{{ vault_mcp_client_secret }}"
      scopes: [mcp]

- name: Two servers behind one pinned authorization server, private_key_jwt (key from the vault)
  corvid.platform.mcp_check:
    endpoints:
      - url: https://search.mcp.example.com/mcp
      - url: https://docs.mcp.example.com/mcp
    oauth:
      client_id: corvid-monitor
      private_key: "{{ vault_mcp_client_key }}"
      authorization_server: https://auth.example.com

- name: Mutual TLS with a private CA
  corvid.platform.mcp_check:
    url: https://mcp.internal.example/mcp
    ca_path: /etc/ssl/corvid/ca.pem
    client_cert: /etc/ssl/corvid/monitor.pem
    client_key: /etc/ssl/corvid/monitor.key
"""

RETURN = r"""
endpoints:
  description: One result per endpoint, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the endpoint.
      type: str
      sample: perplexity
    url:
      description: URL of the endpoint without user information, query values masked.
      type: str
      sample: https://perplexity-mcp.internal.example/mcp
    up:
      description: Whether the endpoint answered the handshake (or C(server/discover)) and C(tools/list).
      type: bool
      sample: true
    healthy:
      description: Whether the endpoint is up and every assertion and the smoke call passed.
      type: bool
      sample: true
    failed_stage:
      description:
        - Stage of the first failure, V(null) when healthy.
        - One of V(connect), V(tls), V(auth_discovery), V(token), V(initialize), V(ping), V(list), V(call),
          V(latency).
      type: str
      sample: connect
    error:
      description: The first failure, V(null) when healthy.
      type: str
      sample: "cannot connect to 10.0.0.5:443: Connection refused"
    failures:
      description: Every failure (the first one and failed assertions).
      type: list
      elements: str
      sample: []
    warnings:
      description: Oddities that do not make the endpoint unhealthy.
      type: list
      elements: str
      sample: []
    http_status:
      description: HTTP status of the failing request, or of the last request when none failed.
      type: int
      sample: 401
    jsonrpc_error:
      description: The JSON-RPC error object of the failing request, if any.
      type: dict
      sample: {"code": -32601, "message": "Method not found"}
    www_authenticate:
      description: The C(WWW-Authenticate) header of a 401 or 403 answer.
      type: str
      sample: 'Bearer error="invalid_token", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"'
    resource_metadata:
      description: The C(resource_metadata) URL from C(WWW-Authenticate) (OAuth protected resource metadata).
      type: str
      sample: https://mcp.example.com/.well-known/oauth-protected-resource/mcp
    oauth:
      description:
        - With O(oauth) - what discovery found and where the token came from (V(fetched) by this endpoint or
          V(cached) from another endpoint of the task). Never a secret.
      type: dict
      sample: {"client_id": "corvid-monitor", "issuer": "https://auth.example.com",
               "token_endpoint": "https://auth.example.com/token", "auth_method": "client_secret_basic",
               "resource": "https://mcp.example.com/mcp", "scopes": ["mcp"], "token_source": "fetched"}
    oauth_error:
      description: The OAuth C(error) and C(error_description) the token endpoint answered with, if it refused.
      type: dict
      sample: {"error": "invalid_client", "error_description": "Invalid client credentials"}
    transport:
      description: Transport used, V(streamable_http) or V(sse).
      type: str
      sample: streamable_http
    protocol_version:
      description: Negotiated protocol version.
      type: str
      sample: "2025-11-25"
    era:
      description: V(handshake) (initialize handshake) or V(modern) (2026-07-28, sessionless).
      type: str
      sample: handshake
    server_info:
      description: The C(serverInfo) the server sent.
      type: dict
      sample: {"name": "perplexity-mcp", "version": "1.2.0"}
    capabilities:
      description: The server capabilities.
      type: dict
      sample: {"tools": {"listChanged": false}}
    instructions:
      description: The server instructions, if any.
      type: str
    session:
      description: Whether the server used a session (C(Mcp-Session-Id), or the legacy SSE stream).
      type: bool
      sample: true
    tls_version:
      description: The TLS version negotiated with the server (V(null) for C(http://) URLs or before a handshake).
      type: str
      sample: TLSv1.3
    resumptions:
      description:
        - How many times a response stream that ended before its answer was resumed (C(GET) with
          C(Last-Event-ID)); V(0) when none was needed.
      type: int
      sample: 0
    ping_supported:
      description: Whether C(ping) answered; V(false) when the server does not implement it (not a failure).
      type: bool
      sample: true
    tools:
      description: Names of the listed tools (all pages; at most 10000, see RV(endpoints[].tool_count)).
      type: list
      elements: str
      sample: [perplexity_ask, perplexity_research]
    tool_count:
      description: Number of listed tools, all of them even when RV(endpoints[].tools) keeps only the first 10000.
      type: int
      sample: 2
    missing_tools:
      description: Expected tools the server does not list.
      type: list
      elements: str
      sample: []
    resources:
      description: URIs of the listed resources, when O(list_resources=true).
      type: list
      elements: str
    prompts:
      description: Names of the listed prompts, when O(list_prompts=true).
      type: list
      elements: str
    call:
      description: Outcome of the smoke call, when O(call_tool) is set.
      type: dict
      sample: {"tool": "echo", "is_error": false, "text": "ping", "structured": null}
    latency_ms:
      description:
        - Milliseconds each stage took (V(null) when it did not run) and the whole check (V(total)).
        - Keys V(connect), V(tls), V(auth_discovery), V(token), V(initialize), V(ping), V(list), V(call),
          V(total). With O(oauth), V(initialize) includes the first request that drew the 401.
      type: dict
      sample: {"connect": 1.2, "tls": 8.4, "auth_discovery": null, "token": null, "initialize": 35.0,
               "ping": 12.1, "list": 20.3, "call": null, "total": 77.6}
summary:
  description: Counts over all endpoints.
  returned: always
  type: dict
  sample: {"total": 2, "up": 2, "down": 0, "healthy": 1, "unhealthy": 1}
unhealthy:
  description: Names of the endpoints that are not healthy.
  returned: always
  type: list
  elements: str
  sample: [serena]
elapsed:
  description: Seconds the checks took on the managed host.
  returned: always
  type: float
  sample: 0.41
metrics_path:
  description: The metrics file, when O(textfile_path) is set.
  returned: when O(textfile_path) is set
  type: str
  sample: /var/lib/prometheus/node-exporter/mcp.prom
msg:
  description: One-line summary.
  returned: always
  type: str
  sample: 1 of 2 MCP endpoints unhealthy - serena (list - expected tools missing - find_symbol)
"""

import copy
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import (
    DEFAULTS,
    KNOWN_VERSIONS,
    PER_ENDPOINT_OPTIONS,
    PROTOCOL_CHOICES,
    TLS_VERSIONS,
    TRANSPORTS,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ConfigError, OptionError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import mask_url
from ansible_collections.corvid.platform.plugins.module_utils._mcp.metrics import (
    check_textfile_path,
    render_metrics,
    validate_extra_labels,
    write_textfile,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.oauth_options import AUTH_METHODS
from ansible_collections.corvid.platform.plugins.module_utils._mcp.options import (
    check_unique_names,
    ssl_contexts_for,
    validate_endpoint,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.runner import run_checks


def call_tool_spec():
    return dict(
        name=dict(type="str", required=True),
        arguments=dict(type="dict", default={}),
        expected_text=dict(type="str"),
        expected_structured=dict(type="dict"),
    )


def oauth_spec():
    return dict(
        client_id=dict(type="str", required=True),
        client_secret=dict(type="str", no_log=True),
        private_key=dict(type="str", no_log=True),
        private_key_id=dict(type="str", no_log=False),
        auth_method=dict(type="str", choices=list(AUTH_METHODS), default="auto"),
        scopes=dict(type="raw"),
        resource=dict(type="str"),
        authorization_server=dict(type="str"),
        token_url=dict(type="str", no_log=False),
        allow_http=dict(type="bool", default=False),
    )


def endpoint_option_spec(top_level):
    """The per-endpoint options; at the top level they carry the defaults, in an endpoint they do not."""
    spec = dict(
        transport=dict(type="str", choices=list(TRANSPORTS)),
        protocol_version=dict(type="str", choices=list(PROTOCOL_CHOICES)),
        bearer_token=dict(type="str", no_log=True),
        headers=dict(type="dict", no_log=True),
        timeout=dict(type="float"),
        validate_certs=dict(type="bool"),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        tls_min_version=dict(type="str", choices=list(TLS_VERSIONS)),
        oauth=dict(type="dict", options=oauth_spec()),
        expected_tools=dict(type="raw"),
        min_protocol_version=dict(type="str", choices=list(KNOWN_VERSIONS)),
        max_latency_ms=dict(type="float"),
        ping=dict(type="bool"),
        list_resources=dict(type="bool"),
        list_prompts=dict(type="bool"),
        call_tool=dict(type="dict", options=call_tool_spec()),
    )
    if top_level:
        for option, default in DEFAULTS.items():
            if default is not None and option in spec:
                spec[option]["default"] = default
    return spec


def argument_spec():
    endpoint = dict(url=dict(type="str", required=True), name=dict(type="str"))
    endpoint.update(endpoint_option_spec(top_level=False))
    spec = dict(
        url=dict(type="str"),
        name=dict(type="str"),
        endpoints=dict(type="list", elements="dict", options=endpoint),
        workers=dict(type="int", default=16),
        failure_policy=dict(type="str", choices=["any", "all", "never"], default="any"),
        textfile_path=dict(type="path"),
        metrics_labels=dict(type="dict"),
    )
    spec.update(endpoint_option_spec(top_level=True))
    return spec


def build_configs(params):
    """Turn module params into normalised endpoint configs (validated, names unique)."""
    if params["endpoints"] is not None:
        raw = list(enumerate(params["endpoints"]))
    else:
        raw = [(None, {"url": params["url"], "name": params["name"]})]
    configs = []
    for index, endpoint in raw:
        config = {"url": endpoint["url"], "name": endpoint.get("name")}
        for option in PER_ENDPOINT_OPTIONS:
            value = endpoint.get(option) if index is not None else None
            config[option] = value if value is not None else params[option]
        validate_endpoint(config, "" if index is None else "endpoints[%s]." % index)
        configs.append(config)
    check_unique_names(configs)
    return configs


# The URLs of the oauth option, masked like url in what Ansible shows of the parameters.
OAUTH_URLS = ("token_url", "authorization_server", "resource")


def hide_url_secrets(module):
    """Mask the password and the query values of every URL in the module's parameters, which Ansible
    prints as ``invocation.module_args`` (with -vvv, and AWX stores them); return the parameters as given.

    The URLs are masked in place rather than registered as no_log values: a no_log value is masked
    everywhere in the output, so a short query value (``?v=1``) would turn numbers in the results into
    strings."""
    params = module.params
    original = dict(params)
    original["endpoints"] = copy.deepcopy(params["endpoints"])
    params["url"] = mask_url(params["url"])
    for endpoint in params["endpoints"] or ():
        endpoint["url"] = mask_url(endpoint.get("url"))
    for holder in [params, *(params["endpoints"] or ())]:
        oauth = holder.get("oauth")
        if isinstance(oauth, dict):
            oauth = holder["oauth"] = dict(oauth)
            for name in OAUTH_URLS:
                if oauth.get(name) is not None:
                    oauth[name] = mask_url(oauth[name])
    return original


def summarise(results):
    up = sum(1 for result in results if result["up"])
    healthy = sum(1 for result in results if result["healthy"])
    return {
        "total": len(results),
        "up": up,
        "down": len(results) - up,
        "healthy": healthy,
        "unhealthy": len(results) - healthy,
    }


def message(summary, results):
    if summary["total"] == 0:
        return "no MCP endpoints to check"
    if summary["unhealthy"] == 0:
        return "%d of %d MCP endpoints healthy" % (summary["healthy"], summary["total"])
    details = ", ".join(
        "%s (%s: %s)" % (result["name"], result["failed_stage"], result["error"])
        for result in results
        if not result["healthy"]
    )
    return "%d of %d MCP endpoints unhealthy: %s" % (summary["unhealthy"], summary["total"], details)


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("url", "endpoints"), ("name", "endpoints")],
        required_one_of=[("url", "endpoints")],
        supports_check_mode=True,
    )
    params = hide_url_secrets(module)  # before anything can fail, so failures do not show them either
    try:
        if params["workers"] < 1:
            raise ConfigError("workers", "must be at least 1, got %s" % params["workers"])
        configs = build_configs(params)
        contexts = ssl_contexts_for(configs, listed=params["endpoints"] is not None)
        validate_extra_labels(params["metrics_labels"])
        if params["textfile_path"] is not None:
            check_textfile_path(params["textfile_path"])
    except OptionError as exc:
        module.fail_json(msg=str(exc))

    started = time.monotonic()
    results = run_checks(configs, workers=params["workers"], ssl_contexts=contexts)
    elapsed = time.monotonic() - started

    summary = summarise(results)
    output = {
        "changed": False,
        "endpoints": results,
        "summary": summary,
        "unhealthy": [result["name"] for result in results if not result["healthy"]],
        "elapsed": round(elapsed, 4),
        "msg": message(summary, results),
    }

    if params["textfile_path"] is not None:
        path = params["textfile_path"]
        content = render_metrics(results, params["metrics_labels"], timestamp=time.time(), duration=elapsed)
        try:
            changed, before = write_textfile(path, content, check_mode=module.check_mode, move=module.atomic_move)
        except OSError as exc:
            output["msg"] = "textfile_path: cannot write %s: %s" % (path, exc)
            module.fail_json(**output)
        output["changed"] = changed
        output["metrics_path"] = path
        if module._diff:
            output["diff"] = {
                "before": before or "",
                "after": content,
                "before_header": path,
                "after_header": path,
            }

    policy = params["failure_policy"]
    if (policy == "any" and summary["unhealthy"]) or (policy == "all" and summary["total"] and summary["healthy"] == 0):
        module.fail_json(**output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()

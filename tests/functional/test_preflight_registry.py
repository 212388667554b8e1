"""Every preflight message of the registry role (the runner is tests/tools/preflight_cases.py)."""

from __future__ import annotations

from preflight_cases import PreflightCases, assert_argument_error, run_role_preflight

SECRET = "registry-preflight-secret-7c1e"
TLS = {
    "registry_tls_cert_file": "/etc/corvid/pki/registry.fullchain.crt",
    "registry_tls_key_file": "/etc/corvid/pki/private/registry.key",
}
USERS = {"registry_users": [{"name": "build", "password": SECRET}, {"name": "app", "password": SECRET + "x"}]}
GOOD_VARS = {**TLS, **USERS}


def good(**changes):
    return {**GOOD_VARS, **changes}


# host name: (host variables, the one expected message)
CASES: dict[str, tuple[dict, str]] = {
    "registry_port_out_of_range": (good(registry_port=70000), "registry_port must be a TCP port (1-65535)"),
    "registry_port_zero": (good(registry_port=0), "registry_port must be a TCP port (1-65535)"),
    "registry_listen_not_an_address": (
        good(registry_listen_address="registry1"),
        'registry_listen_address must be one IP address (e.g. 0.0.0.0, 127.0.0.1 or ::), or "" for every interface',
    ),
    "registry_listen_bad_octet": (
        good(registry_listen_address="10.0.0.300"),
        "registry_listen_address must be one IP address",
    ),
    "registry_without_tls": (
        {**USERS},
        "registry_tls_cert_file and registry_tls_key_file are required",
    ),
    "registry_cert_without_key": (
        good(registry_tls_key_file=""),
        "registry_tls_cert_file and registry_tls_key_file are required",
    ),
    "registry_relative_cert": (
        good(registry_tls_cert_file="registry.crt"),
        'registry_tls_cert_file must be an absolute path (one line, no quotes), not "registry.crt"',
    ),
    "registry_key_path_newline": (
        good(registry_tls_key_file="/etc/k.key\nhttp:"),
        "registry_tls_key_file must be an absolute path",
    ),
    "registry_bad_key_group": (
        good(registry_tls_key_group="SSL Cert"),
        'registry_tls_key_group must be a group name (e.g. ssl-cert), not "SSL Cert"',
    ),
    "registry_storage_root": (good(registry_storage_path="/"), "registry_storage_path must be an absolute directory"),
    "registry_storage_relative": (
        good(registry_storage_path="var/lib/registry"),
        "registry_storage_path must be an absolute directory",
    ),
    "registry_realm_quote": (
        good(registry_auth_realm='corvid"registry'),
        "registry_auth_realm must be one line of text without quotes or backslashes",
    ),
    "registry_no_users": ({**TLS}, "registry_users has no present user"),
    "registry_only_absent_users": (
        good(registry_users=[{"name": "former", "state": "absent"}]),
        "registry_users has no present user",
    ),
    "registry_user_with_colon": (
        good(registry_users=[{"name": "build:x", "password": SECRET}]),
        'registry_users[0].name "build:x": use letters, digits and _.@- (no colon or space)',
    ),
    "registry_user_without_password": (
        good(registry_users=[{"name": "build", "password": SECRET}, {"name": "app"}]),
        "registry_users[1] (app) has no password: set password (from vault), or state: absent",
    ),
    "registry_password_newline": (
        good(registry_users=[{"name": "build", "password": SECRET + "\n"}]),
        "registry_users[0] (build): the password must not contain control characters",
    ),
    "registry_duplicate_user": (
        good(registry_users=[{"name": "build", "password": SECRET}, {"name": "build", "password": SECRET}]),
        'registry_users names must be unique: "build" is defined more than once',
    ),
}

GOOD: dict[str, dict] = {
    "registry_good": GOOD_VARS,
    "registry_good_loopback_ipv6": good(registry_listen_address="::1", registry_tls_key_group="ssl-cert"),
    "registry_good_absent_user": good(
        registry_users=[{"name": "build", "password": SECRET}, {"name": "former", "state": "absent"}]
    ),
}

PREFLIGHT = PreflightCases("registry", CASES, GOOD, secret=SECRET, check_ran=True)
preflight = PREFLIGHT.fixture("preflight_registry")
test_each_problem_fails_with_its_own_message = PREFLIGHT.problem_test()
test_good_variables_pass = PREFLIGHT.good_test()
test_passwords_stay_out_of_the_whole_output = PREFLIGHT.secret_test()


def test_unknown_user_state_fails_in_the_argument_spec(tmp_path):
    """The role itself, limited to its preflight tag on localhost: the argument spec names it."""
    process, failed = run_role_preflight(
        tmp_path, "registry", {**TLS, "registry_users": [{"name": "build", "password": SECRET, "state": "disabled"}]}
    )
    assert_argument_error(process, failed, "state", "disabled")
    assert SECRET not in process.stdout + process.stderr

"""Every preflight message: each case fails with its own message, and only that one.

No container: the roles' preflight entry points run against local hosts (one host per case,
all in one ansible-playbook run; the runner is tests/tools/preflight_cases.py). The shared
checks that depend on facts this machine cannot fake (no facts, another distribution) are
rendered from roles/common/templates/preflight.j2 with Ansible's own templating.
"""

from __future__ import annotations

import pytest
from preflight_cases import ROOT, SECRET, PreflightCases, assert_argument_error, run_role_on_localhost

# pki: the CA directory every case but its own sets, a certificate and a CA certificate to vary.
PKI_DIR = {"pki_ca_dir": "/nonexistent/pki-preflight"}
PKI_CERT = {"name": "edge", "common_name": "a.example.com"}
PKI_PEM = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
PKI_ACME = {"pki_acme_directory": "https://acme.example.com/dir", "pki_acme_terms_agreed": True}

# host name: (role, host variables, the one expected message)
CASES: dict[str, tuple[str, dict, str]] = {
    "redis_port_out_of_range": ("redis", {"redis_port": 70000}, "redis_port must be a TCP port"),
    "redis_port_negative": ("redis", {"redis_port": -1}, "redis_port must be a TCP port"),
    "redis_tls_port_out_of_range": (
        "redis",
        {"redis_tls_port": 65536, "redis_tls_cert_file": "/c", "redis_tls_key_file": "/k"},
        "redis_tls_port must be a TCP port",
    ),
    "redis_no_listener": ("redis", {"redis_port": 0}, "redis_port and redis_tls_port are both 0"),
    "redis_same_ports": (
        "redis",
        {"redis_tls_port": 6379, "redis_tls_cert_file": "/c", "redis_tls_key_file": "/k"},
        "redis_port and redis_tls_port are both 6379",
    ),
    "redis_no_bind": ("redis", {"redis_bind_addresses": []}, "redis_bind_addresses is empty"),
    "redis_bad_maxmemory": ("redis", {"redis_maxmemory": "lots"}, "redis_maxmemory must be a size such as 256mb"),
    "redis_bad_save": ("redis", {"redis_save": [{"seconds": 0, "changes": 1}]}, "redis_save entries need seconds"),
    "redis_cert_without_key": (
        "redis",
        {"redis_tls_cert_file": "/c"},
        "redis_tls_cert_file and redis_tls_key_file go together",
    ),
    "redis_tls_port_without_cert": (
        "redis",
        {"redis_tls_port": 6380},
        "redis_tls_port is 6380: set redis_tls_cert_file",
    ),
    "redis_tls_files_without_port": (
        "redis",
        {"redis_tls_ca_cert_file": "/ca"},
        "redis_tls_cert_file, redis_tls_key_file or redis_tls_ca_cert_file is set but redis_tls_port is 0",
    ),
    "redis_replica_without_host": (
        "redis",
        {"redis_replicaof": {"port": 6379}, "redis_replication_password": SECRET},
        "redis_replicaof needs a host",
    ),
    "redis_replica_of_itself": (
        "redis",
        {"redis_replicaof": {"host": "127.0.0.1"}, "redis_replication_password": SECRET},
        "redis_replicaof points at this host itself",
    ),
    "redis_replica_bad_port": (
        "redis",
        {"redis_replicaof": {"host": "cache9", "port": 70000}, "redis_replication_password": SECRET},
        "redis_replicaof.port must be a TCP port",
    ),
    "redis_replica_without_password": (
        "redis",
        {"redis_replicaof": {"host": "cache9"}},
        "redis_replication_password is required when redis_replicaof is set",
    ),
    "redis_bad_replication_user": (
        "redis",
        {"redis_replication_user": "default"},
        "redis_replication_user must be a user name",
    ),
    "redis_replication_password_newline": (
        "redis",
        {"redis_replication_password": SECRET + "\n"},
        "redis_replication_password must not contain control characters",
    ),
    "redis_acl_bad_name": (
        "redis",
        {"redis_acl_users": [{"name": "has space", "password": SECRET}]},
        'redis_acl_users[0].name "has space"',
    ),
    "redis_acl_no_password": (
        "redis",
        {"redis_acl_users": [{"name": "app", "password": ""}]},
        "redis_acl_users[0] (app) has no password",
    ),
    "redis_acl_duplicate": (
        "redis",
        {"redis_acl_users": [{"name": "app", "password": SECRET}, {"name": "app", "password": SECRET}]},
        'redis_acl_users names must be unique: "app"',
    ),
    "redis_default_user_without_password": (
        "redis",
        {"redis_default_user_enabled": True},
        "redis_default_user_enabled is true but redis_default_user_password is empty",
    ),
    "redis_bind_as_a_string": ("redis", {"redis_bind_addresses": "127.0.0.1"}, "redis_bind_addresses must be a list"),
    "redis_bind_with_two_addresses": (
        "redis",
        {"redis_bind_addresses": ["127.0.0.1 0.0.0.0"]},
        "redis_bind_addresses[0] must be one address",
    ),
    "redis_replica_host_injection": (
        "redis",
        {"redis_replicaof": {"host": "cache9\nslaveof evil 6379"}, "redis_replication_password": SECRET},
        "redis_replicaof.host must be a host name or address",
    ),
    "redis_replica_of_localhost_dot": (
        "redis",
        {"redis_replicaof": {"host": "LOCALHOST."}, "redis_replication_password": SECRET},
        "redis_replicaof points at this host itself",
    ),
    "redis_acl_commands_newline": (
        "redis",
        {"redis_acl_users": [{"name": "app", "password": SECRET, "commands": "+@all\nuser evil on"}]},
        "redis_acl_users[0].commands must be one line",
    ),
    "redis_extra_config_newline": (
        "redis",
        {"redis_extra_config": {"maxclients": "100\nslaveof evil 6379"}},
        'redis_extra_config "maxclients"',
    ),
    "redis_acl_password_a_number": (
        "redis",
        {"redis_acl_users": [{"name": "app", "password": 12345}, {"name": "app2", "password": ""}]},
        "redis_acl_users[1] (app2) has no password",
    ),
    "redis_acl_name_trailing_newline": (
        "redis",
        {"redis_acl_users": [{"name": "app\n", "password": SECRET}]},
        "redis_acl_users[0].name",
    ),
    "common_unsupported_release": (
        "redis",
        {"common_supported_releases": ["11"]},
        "The redis role supports Debian 11; this host runs Debian",
    ),
    "pki_create_without_ca_dir": ("pki", {}, "pki_ca is create but pki_ca_dir is empty"),
    "pki_relative_ca_dir": ("pki", {"pki_ca_dir": "cache/pki"}, "pki_ca_dir must be an absolute path"),
    "pki_provided_without_certificate": (
        "pki",
        {"pki_ca": "provided", "pki_ca_private_key": SECRET},
        "pki_ca is provided but pki_ca_certificate holds no PEM certificate",
    ),
    "pki_provided_without_key": (
        "pki",
        {"pki_ca": "provided", "pki_ca_certificate": PKI_PEM},
        "pki_ca is provided but pki_ca_private_key is empty",
    ),
    "pki_unknown_ca_mode": ("pki", {"pki_ca": "vault", **PKI_DIR}, "pki_ca must be create, provided or acme"),
    "pki_acme_without_ca_dir": (
        "pki",
        {"pki_ca": "acme", **PKI_ACME},
        "pki_ca is acme but pki_ca_dir is not an absolute path",
    ),
    "pki_acme_without_directory": (
        "pki",
        {"pki_ca": "acme", **PKI_DIR, **PKI_ACME, "pki_acme_directory": ""},
        "pki_ca is acme but pki_acme_directory is not a URL",
    ),
    "pki_acme_terms_not_agreed": (
        "pki",
        {"pki_ca": "acme", **PKI_DIR, **PKI_ACME, "pki_acme_terms_agreed": False},
        "pki_ca is acme but pki_acme_terms_agreed is false",
    ),
    "pki_acme_wildcard": (
        "pki",
        {
            "pki_ca": "acme",
            **PKI_DIR,
            **PKI_ACME,
            "pki_certificates": [{**PKI_CERT, "subject_alt_names": ["*.example.com"]}],
        },
        'pki_certificates[0].subject_alt_names: "*.example.com" is a wildcard, which HTTP-01',
    ),
    "pki_renew_margin_too_long": (
        "pki",
        {"pki_renew_days": 400, **PKI_DIR},
        "pki_renew_days (400) must be smaller than pki_certificate_valid_days (397)",
    ),
    "pki_no_certificate_life": (
        "pki",
        {"pki_certificate_valid_days": 0, **PKI_DIR},
        "pki_certificate_valid_days must be at least 1",
    ),
    "pki_certificate_without_name": (
        "pki",
        {"pki_certificates": [{"common_name": "a.example.com"}], **PKI_DIR},
        "pki_certificates[0] has no usable name",
    ),
    "pki_certificate_path_in_name": (
        "pki",
        {"pki_certificates": [{"name": "../edge", "common_name": "a.example.com"}], **PKI_DIR},
        "pki_certificates[0] has no usable name (../edge)",
    ),
    "pki_certificate_without_common_name": (
        "pki",
        {"pki_certificates": [{"name": "edge"}], **PKI_DIR},
        "pki_certificates[0] (edge) has no common_name",
    ),
    "pki_duplicate_names": (
        "pki",
        {"pki_certificates": [{"name": "edge", "common_name": "a.example.com"}] * 2, **PKI_DIR},
        'pki_certificates names must be unique: "edge"',
    ),
    "pki_san_neither_dns_nor_ip": (
        "pki",
        {"pki_certificates": [{**PKI_CERT, "subject_alt_names": ["a.example.com", "not a name"]}], **PKI_DIR},
        'pki_certificates[0].subject_alt_names: "not a name" is neither a DNS name nor an IP address',
    ),
    "pki_san_bad_ipv4": (
        "pki",
        {"pki_certificates": [{**PKI_CERT, "subject_alt_names": ["10.0.0.300"]}], **PKI_DIR},
        'pki_certificates[0].subject_alt_names: "10.0.0.300" is neither',
    ),
    "pki_unknown_key_type": (
        "pki",
        {"pki_certificates": [{**PKI_CERT, "key_type": "dsa"}], **PKI_DIR},
        'pki_certificates[0].key_type must be ecdsa (P-256) or rsa, not "dsa"',
    ),
    "pki_small_rsa_key": (
        "pki",
        {"pki_certificates": [{**PKI_CERT, "key_type": "rsa", "key_size": 1024}], **PKI_DIR},
        "pki_certificates[0].key_size 1024 is too small for an RSA key",
    ),
}

PREFLIGHT = PreflightCases(None, CASES, {"redis_good": ("redis", {})}, secret=SECRET)
preflight = PREFLIGHT.fixture("preflight")
test_each_problem_fails_with_its_own_message = PREFLIGHT.problem_test()


def test_good_variables_pass(preflight):
    messages, _ = preflight
    assert "redis_good" not in messages


def test_outside_a_role(preflight):
    messages, output = preflight
    assert "common_outside_a_role" in messages, output[-3000:]
    assert messages["common_outside_a_role"] == [
        "corvid.platform.common is internal: import it from a role"
        " (ansible.builtin.import_role with tasks_from), not from a play."
    ]


test_secret_values_stay_out_of_the_whole_output = PREFLIGHT.secret_test()


# The shared checks on facts this machine cannot fake, rendered with Ansible's templating.
FACT_CASES = {
    "no_facts": (
        {},
        "The redis role needs facts: run it in a play with gather_facts: true (or after ansible.builtin.setup).",
    ),
    "not_debian": (
        {
            "virtualization_type": "kvm",
            "os_family": "RedHat",
            "distribution": "Rocky",
            "distribution_major_version": "9",
        },
        "The redis role supports Debian 12 and 13; this host runs Rocky.",
    ),
    "debian_11": (
        {
            "virtualization_type": "kvm",
            "os_family": "Debian",
            "distribution": "Debian",
            "distribution_major_version": "11",
        },
        "The redis role supports Debian 12 and 13; this host runs Debian 11: use a supported release.",
    ),
    "debian_13": (
        {
            "virtualization_type": "kvm",
            "os_family": "Debian",
            "distribution": "Debian",
            "distribution_major_version": "13",
        },
        "",
    ),
}


@pytest.mark.parametrize("case", FACT_CASES)
def test_shared_fact_checks(case):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    facts, expected = FACT_CASES[case]
    variables = {
        "ansible_parent_role_names": ["corvid.platform.redis"],
        "common_caller": "redis",
        "common_supported_releases": ["12", "13"],
        "ansible_facts": facts,
    }
    source = (ROOT / "roles/common/templates/preflight.j2").read_text()
    rendered = Templar(loader=DataLoader(), variables=variables).template(trust_as_template(source)) or ""
    assert [line.strip() for line in rendered.splitlines() if line.strip()] == ([expected] if expected else [])


def test_mcp_health_bad_input_names_the_variable(tmp_path):
    """The mcp_health role's argument spec: a bad policy fails before any check, naming it."""
    process, failed = run_role_on_localhost(
        tmp_path,
        "- name: MCP health\n  hosts: localhost\n  gather_facts: false\n"
        "  roles:\n    - role: corvid.platform.mcp_health\n",
        {"mcp_health_failure_policy": "sometimes", "mcp_health_textfile_path": ""},
    )
    assert_argument_error(process, failed, "mcp_health_failure_policy", "sometimes")

"""Every preflight message of the app_containers role (the runner is tests/tools/preflight_cases.py)."""

from __future__ import annotations

import sys

import pytest
from preflight_cases import SECRET, PreflightCases, one_failure, run_role_on_localhost

APP = {
    "name": "demo",
    "image": "corvid/demo",
    "tag": "v1",
    "user": "10001:10001",
    "ports": [{"name": "api", "port": 8000, "env": "AGENT_API_PORT"}],
    "secrets": [{"name": "db_password", "env": "DB_PASSWORD_FILE", "variable": "vault_demo_db_password"}],
}
VAULT = {"vault_demo_db_password": SECRET}
REGISTRY = {"url": "https://registry1:5000", "username": "app", "password": SECRET}


def app(**changes):
    return {**APP, **changes}


def apps(*definitions):
    return {"app_containers_apps": list(definitions), **VAULT}


# host name: (host variables, the one expected message)
CASES: dict[str, tuple[dict, str]] = {
    "app_image_without_tag_or_digest": (
        apps({key: value for key, value in APP.items() if key != "tag"}),
        "app_containers_apps[0] (demo) has neither tag nor digest",
    ),
    "app_image_with_a_tag_inside": (
        apps(app(image="corvid/demo:v1")),
        "app_containers_apps[0] (demo).image must be a repository path without tag or digest",
    ),
    "app_tag_with_a_space": (apps(app(tag="v 1")), 'app_containers_apps[0] (demo).tag "v 1" is not a docker tag'),
    "app_health_path_without_slash": (
        apps(app(health_path="healthz")),
        '(demo).health_path must be a URL path that starts with / (e.g. /healthz), not "healthz"',
    ),
    "app_ready_path_with_a_space": (
        apps(app(ready_path="/ready z")),
        'app_containers_apps[0] (demo).ready_path must be a URL path that starts with / (e.g. /readyz), not "/ready z"',
    ),
    "app_bad_digest": (apps(app(tag="", digest="sha256:abc")), "app_containers_apps[0] (demo).digest must be sha256:"),
    "app_port_used_twice": (
        apps(app(ports=[*APP["ports"], {"name": "ws", "port": 8100, "env": "AGENT_WS_PORT"}])),
        "app_containers_apps: port 8100 is used twice on this host (demo api green and demo ws blue)",
    ),
    "app_port_used_by_two_apps": (
        apps(APP, app(name="other", secrets=[])),
        "app_containers_apps: port 8000 is used twice on this host (demo api blue and other api blue)",
    ),
    "app_memory_does_not_parse": (
        apps(app(memory="lots")),
        'app_containers_apps[0] (demo).memory "lots" does not parse as a size',
    ),
    "app_registry_without_scheme": (
        {**apps(APP), "app_containers_registry": {**REGISTRY, "url": "registry1:5000"}},
        "app_containers_registry.url must be an https:// URL",
    ),
    "app_registry_url_with_credentials": (
        {**apps(APP), "app_containers_registry": {**REGISTRY, "url": f"https://app:{SECRET}@registry1:5000"}},
        'the credentials go in username and password), not "https://***@registry1:5000"',
    ),
    "app_registry_user_without_password": (
        {**apps(APP), "app_containers_registry": {"url": "https://registry1:5000", "username": "app"}},
        "app_containers_registry.username and app_containers_registry.password go together",
    ),
    "app_registry_password_without_url": (
        {**apps(APP), "app_containers_registry": {"password": SECRET}},
        "app_containers_registry.username, password or ca_file is set but app_containers_registry.url is empty",
    ),
    "app_registry_password_without_user": (
        {**apps(APP), "app_containers_registry": {"url": "https://registry1:5000", "password": SECRET}},
        "app_containers_registry.username and app_containers_registry.password go together",
    ),
    "app_registry_ca_missing": (
        {**apps(APP), "app_containers_registry": {**REGISTRY, "ca_file": "/nonexistent/ca.crt"}},
        'app_containers_registry.ca_file "/nonexistent/ca.crt" is not a file on the controller',
    ),
    "app_secret_in_plain_text": (
        apps(app(secrets=[{"name": "db_password", "env": "DB_PASSWORD_FILE", "value": SECRET}])),
        "app_containers_apps[0] (demo).secrets[0] (db_password) gives its value in plain text: vault is required",
    ),
    "app_secret_not_a_vault_variable": (
        apps(app(secrets=[{"name": "db_password", "env": "DB_PASSWORD_FILE", "variable": "db_password"}])),
        "app_containers_apps[0] (demo).secrets[0] (db_password): variable must name a vault variable",
    ),
    "app_secret_value_given_as_variable": (
        apps(app(secrets=[{"name": "db_password", "env": "DB_PASSWORD_FILE", "variable": SECRET}])),
        "app_containers_apps[0] (demo).secrets[0] (db_password): variable must name a vault variable",
    ),
    "app_secret_value_given_as_variable_name_like": (
        apps(app(secrets=[{"name": "db_password", "env": "DB_PASSWORD_FILE", "variable": "preflight_secret_4d2a"}])),
        "give the variable's name, never the secret itself",
    ),
    "app_secret_variable_missing": (
        {"app_containers_apps": [APP]},
        "vault_demo_db_password is not defined or empty",
    ),
    "app_secret_in_the_environment": (
        apps(app(environment={"DB_PASSWORD": "x"})),
        'app_containers_apps[0] (demo).environment "DB_PASSWORD" looks like a secret',
    ),
    "app_api_key_in_the_environment": (
        apps(app(environment={"AGENT_API_KEY": "x"})),
        'app_containers_apps[0] (demo).environment "AGENT_API_KEY" looks like a secret',
    ),
    "app_runs_as_root": (
        apps(app(user="0:0")),
        "app_containers_apps[0] (demo).user must be a numeric uid[:gid] other than 0",
    ),
    "app_without_user": (apps(app(user="")), "app_containers_apps[0] (demo) has no user"),
    "app_bad_name": (apps(app(name="Demo_App")), 'app_containers_apps[0].name "Demo_App" must be lower-case'),
    "app_duplicate": (
        apps(APP, app(ports=[{"name": "api", "port": 9000, "env": "AGENT_API_PORT"}])),
        'app_containers_apps names must be unique: "demo"',
    ),
    "app_port_out_of_range": (
        apps(app(ports=[{"name": "api", "port": 65500, "env": "AGENT_API_PORT"}])),
        "app_containers_apps[0] (demo).ports[0] (api): port must be a TCP port that stays below 65536",
    ),
    "app_health_port_unknown": (
        apps(app(health_port="web")),
        'app_containers_apps[0] (demo).health_port "web" is not one of its ports (api)',
    ),
    "app_bad_cpus": (apps(app(cpus=0)), "app_containers_apps[0] (demo).cpus must be a number of CPUs greater than 0"),
    "app_colours_same_offset": (
        {**apps(APP), "app_containers_colour_offsets": {"blue": 0, "green": 0}},
        "app_containers_colour_offsets must give blue and green two different port offsets",
    ),
    "app_colours_negative_offset": (
        {**apps(APP), "app_containers_colour_offsets": {"blue": 0, "green": -8000}},
        "app_containers_colour_offsets must give blue and green two different port offsets, whole numbers 0 or more",
    ),
    "app_colour_negative_deadline": (
        {
            **apps(APP),
            "app_containers_colour": "blue",
            "app_containers_colour_release": "v1",
            "app_containers_colour_deadline": -5,
        },
        "app_containers_colour_deadline must be 1 second or more, not -5",
    ),
    "app_log_size": ({**apps(APP), "app_containers_log_max_size": "100"}, "app_containers_log_max_size must be a size"),
}

GOOD: dict[str, dict] = {
    "app_good": apps(app(memory="512m", cpus=1.5, environment={"AGENT_MODE": "test"})),
    "app_good_digest": apps(app(tag="", digest="sha256:" + "a" * 64)),
    "app_good_registry": {**apps(APP), "app_containers_registry": REGISTRY},
    "app_good_two_apps": apps(APP, app(name="other", secrets=[], ports=[{"name": "api", "port": 9000, "env": "P"}])),
    "app_good_none": {},
}

PREFLIGHT = PreflightCases("app_containers", CASES, GOOD, secret=SECRET, check_ran=True)
preflight = PREFLIGHT.fixture("preflight_app_containers")
test_each_problem_fails_with_its_own_message = PREFLIGHT.problem_test()
test_good_variables_pass = PREFLIGHT.good_test()
test_secret_values_stay_out_of_the_whole_output = PREFLIGHT.secret_test()


def test_a_secret_given_as_a_variable_name_is_not_repeated(preflight):
    messages, output = preflight
    assert "preflight_secret_4d2a" not in " ".join(messages["app_secret_value_given_as_variable_name_like"])
    assert "preflight_secret_4d2a" not in output.replace('"variable": "preflight_secret_4d2a"', "")


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"app_containers_deploy_steps": [50, 10]}, "app_containers_deploy_steps must be increasing"),
        ({"app_containers_deploy_max_error_rate": 2}, "app_containers_deploy_max_error_rate must be a fraction"),
        ({"app_containers_deploy_step_seconds": -3}, "app_containers_deploy_step_seconds must be 0 or more"),
        ({"app_containers_deploy_max_failed_hosts": -1}, "app_containers_deploy_max_failed_hosts must be 0 or more"),
    ],
)
def test_the_deploy_entry_point_checks_its_inputs_first(tmp_path, variables, expected):
    """The deploy entry point called by a play of its own: bad inputs stop it at its first task."""
    process, failed = run_role_on_localhost(
        tmp_path,
        "- name: Deploy\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: Deploy\n      ansible.builtin.include_role:\n"
        "        name: corvid.platform.app_containers\n        tasks_from: deploy\n",
        {"app_containers_deploy_host": "app-nowhere", "ansible_python_interpreter": sys.executable, **variables},
    )
    failure = one_failure(process, failed)
    assert expected in str(failure.get("msg")), failure
    assert failure.get("assertion") == "__app_containers_deploy_problems | length == 0", failure

"""Real state of the pgbouncer role with its defaults: no database, TLS 1.3 only, on the loopback."""

PORT = 6432


def test_service_running_and_enabled(host):
    service = host.service("pgbouncer")
    assert service.is_running
    assert service.is_enabled


def test_listens_on_loopback_only(host):
    assert host.socket(f"tcp://127.0.0.1:{PORT}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{PORT}").is_listening


def test_clients_get_tls13_only(host):
    run = host.run(
        "openssl s_client -starttls postgres -connect 127.0.0.1:%s -CAfile /etc/corvid/pki/ca.crt </dev/null", str(PORT)
    )
    assert "New, TLSv1.3" in run.stdout, run.stdout + run.stderr
    plain = host.run(
        "PGCONNECT_TIMEOUT=10 psql 'host=127.0.0.1 port=%s dbname=app user=app sslmode=disable' -c 'SELECT 1'",
        str(PORT),
    )
    assert plain.rc != 0
    assert "SSL required" in plain.stderr


def test_no_database_and_no_auth_user(host):
    assert host.file("/etc/pgbouncer/userlist.txt").content_string.strip() == ""
    config = host.file("/etc/pgbouncer/pgbouncer.ini").content_string
    assert "auth_user" not in config
    assert "auth_type = scram-sha-256" in config


def test_defaults_on_the_admin_console(host):
    run = host.run(
        "runuser -u postgres -- psql -X -A -t -F '|' -h /var/run/postgresql -p %s -U pgbouncer pgbouncer -c %s",
        str(PORT),
        "SHOW CONFIG",
    )
    assert run.rc == 0, run.stderr
    config = {line.split("|")[0]: line.split("|")[1] for line in run.stdout.splitlines()}
    assert config["pool_mode"] == "transaction"
    assert (config["default_pool_size"], config["min_pool_size"], config["reserve_pool_size"]) == ("20", "10", "5")
    assert (config["max_client_conn"], config["query_wait_timeout"]) == ("400", "30")
    assert config["client_tls_protocols"] == "tlsv1.3"
    assert config["server_tls_sslmode"] == "verify-full"


def test_config_is_private_and_checked(host):
    config = host.file("/etc/pgbouncer/pgbouncer.ini")
    assert (config.user, config.group, config.mode) == ("root", "postgres", 0o640)
    assert host.run("pgbouncer-config-check /etc/pgbouncer/pgbouncer.ini").rc == 0

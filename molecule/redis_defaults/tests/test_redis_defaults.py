"""Real state of the redis role with defaults only: a locked, loopback-only Redis."""


def test_service_running_and_enabled(host):
    service = host.service("redis-server")
    assert service.is_running
    assert service.is_enabled


def test_listens_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:6379").is_listening
    assert not host.socket("tcp://0.0.0.0:6379").is_listening
    assert not host.socket("tcp://0.0.0.0:6380").is_listening


def test_default_user_is_off(host):
    """No ACL user and the default user off: every command needs a login that does not exist."""
    run = host.run("redis-cli -h 127.0.0.1 -p 6379 PING")
    assert "NOAUTH" in run.stdout + run.stderr


def test_config_is_private_and_checked(host):
    config = host.file("/etc/redis/redis.conf")
    assert (config.user, config.group, config.mode) == ("redis", "redis", 0o640)
    assert host.run("redis-config-check /etc/redis/redis.conf").rc == 0


def test_rdb_snapshots_on_aof_off(host):
    content = host.file("/etc/redis/redis.conf").content_string
    assert "appendonly no" in content
    assert "save 3600 1" in content.replace('"', "")

"""Real state of the nginx role with defaults only: no sites, HTTP redirects, stub_status local."""


def test_service_running_and_enabled(host):
    service = host.service("nginx")
    assert service.is_running
    assert service.is_enabled


def test_http_redirects_to_https(host):
    run = host.run(
        "python3 -c \"import http.client as h; c=h.HTTPConnection('127.0.0.1',80); "
        "c.request('GET','/',headers={'Host':'edge.test'}); r=c.getresponse(); "
        "print(r.status, r.getheader('Location'))\""
    )
    assert run.stdout.strip() == "301 https://edge.test/"


def test_acme_webroot_served_on_http(host):
    run = host.run(
        'python3 -c "import urllib.request as u; '
        "print(u.urlopen('http://127.0.0.1/.well-known/acme-challenge/acme-webroot.txt').read().decode())\""
    )
    assert "ACME HTTP-01 webroot" in run.stdout


def test_stub_status_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:8081").is_listening
    assert not host.socket("tcp://0.0.0.0:8081").is_listening


def test_no_tls_listener_without_sites(host):
    assert not host.socket("tcp://0.0.0.0:443").is_listening


def test_live_configuration_passes_the_check(host):
    assert host.run("nginx-config-check").rc == 0

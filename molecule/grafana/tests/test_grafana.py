"""The grafana role's repository on Debian 12: the deb822 source apt reads, signed by the
key the inventory gave. Grafana itself cannot be installed here (see molecule.yml)."""

import pytest

SOURCE = "/etc/apt/sources.list.d/grafana.sources"


def fingerprints(host, command):
    run = host.run(command + " | gpg --show-keys --with-colons 2>/dev/null | awk -F: '$1 == \"fpr\" {print $10}'")
    assert run.rc == 0, run.stderr
    return run.stdout.split()


def test_the_source_names_grafanas_repository(host):
    source = host.file(SOURCE)
    assert (source.user, source.group, source.mode) == ("root", "root", 0o644)
    fields = dict(line.split(": ", 1) for line in source.content_string.splitlines() if ": " in line)
    assert fields["Types"] == "deb"
    assert fields["URIs"] == "https://apt.grafana.com"
    assert fields["Suites"] == "stable"
    assert fields["Components"] == "main"


def test_the_source_is_signed_by_the_given_key_only(host):
    # Signed-By holds the key itself (deb822 multi-line field: indented, "." for empty lines).
    given = fingerprints(host, "cat /root/test-signing-key.asc")
    in_source = fingerprints(
        host, f"sed -n '/^Signed-By:/,$p' {SOURCE} | sed -e 's/^Signed-By: *//' -e 's/^ *//' -e 's/^[.]$//'"
    )
    assert given and in_source == given


def test_apt_accepts_the_source(host):
    # The targets apt would fetch, read from the sources without fetching anything.
    run = host.run("apt-get indextargets --no-release-info --format '$(SITE)' 2>&1 | sort -u")
    assert run.rc == 0, run.stdout
    assert "https://apt.grafana.com" in run.stdout.split()


def test_grafana_installs_and_serves_tls13(host):
    pytest.skip(
        "Grafana's APT repository (apt.grafana.com) is not reachable from the machines this project is tested on,"
        " and Grafana is not in Debian: the install is not tested here and never faked"
    )

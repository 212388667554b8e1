#!/usr/bin/env python3
"""Push the scenario's test image to the registry on this host, without docker.

One layer: busybox-static's binary and a few links, a web root with healthz, readyz (left out
of v3-unready) and a start script that writes /version into the tmpfs /tmp (the root is
read-only; www/version links there) and runs busybox httpd on $AGENT_API_PORT.
Tags v1, v2, v3-unready and
v4-errors (its /cgi-bin/items answers 500) of corvid/demo; a tag already in the registry is
skipped. Prints "pushed TAG" per pushed tag.
Environment: REGISTRY_PASSWORD (user corvid), REGISTRY_CA.
"""

import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import ssl
import tarfile
import urllib.parse

REPOSITORY = "corvid/demo"
AUTH = "Basic " + base64.b64encode(f"corvid:{os.environ['REGISTRY_PASSWORD']}".encode()).decode()
CONTEXT = ssl.create_default_context(cafile=os.environ["REGISTRY_CA"])
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
START = """#!/bin/sh
printf '{"version": "%s", "colour": "%s"}\\n' "$APP_VERSION" "$AGENT_COLOUR" > /tmp/version
exec httpd -f -p "$AGENT_API_PORT" -h /www
"""
# The "API" the deploy's load generator calls through the edge: 200, or 500 for v4-errors.
ITEMS = """#!/bin/sh
printf 'Status: %s\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s %s\\n' "$ITEMS_STATUS" "$APP_VERSION" "$AGENT_COLOUR"
"""


def request(method, url, data=None, headers=None):
    """One request to the registry; url is a path or an absolute URL on it (a Location)."""
    path = urllib.parse.urlsplit(url)
    connection = http.client.HTTPSConnection("localhost", 5000, context=CONTEXT, timeout=30)
    target = path.path + ("?" + path.query if path.query else "")
    connection.request(method, target, body=data, headers={"Authorization": AUTH, **(headers or {})})
    answer = connection.getresponse()
    body = answer.read()
    connection.close()
    return answer.status, answer.headers, body


def add(tar, name, data=b"", *, mode=0o644, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.mtime = kind, mode, link, 0
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def layer(ready):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for directory in ("bin", "www", "www/cgi-bin"):
            add(tar, directory, kind=tarfile.DIRTYPE, mode=0o755)
        # Like any /tmp: the tmpfs docker mounts there takes this mode.
        add(tar, "tmp", kind=tarfile.DIRTYPE, mode=0o1777)
        with open("/bin/busybox", "rb") as busybox:
            add(tar, "bin/busybox", busybox.read(), mode=0o755)
        for tool in ("sh", "cat", "cp", "mkdir", "printf", "httpd", "wget", "id", "ls"):
            add(tar, f"bin/{tool}", kind=tarfile.SYMTYPE, link="busybox")
        add(tar, "bin/start", START.encode(), mode=0o755)
        add(tar, "www/healthz", b"ok\n")
        # The root is read-only: the start script writes the version into the tmpfs /tmp.
        add(tar, "www/version", kind=tarfile.SYMTYPE, link="../tmp/version")
        add(tar, "www/cgi-bin/items", ITEMS.encode(), mode=0o755)
        if ready:
            add(tar, "www/readyz", b"ready\n")
    data = raw.getvalue()
    return data, gzip.compress(data, mtime=0)


def upload(blob):
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    if request("HEAD", f"/v2/{REPOSITORY}/blobs/{digest}")[0] == 200:
        return digest
    status, headers, body = request("POST", f"/v2/{REPOSITORY}/blobs/uploads/")
    assert status == 202, (status, body)
    location = headers["Location"]
    location += ("&" if "?" in location else "?") + "digest=" + digest
    status, _, body = request("PUT", location, blob, {"Content-Type": "application/octet-stream"})
    assert status == 201, (status, body)
    return digest


def push(tag, version, ready, items_status=200):
    if request("HEAD", f"/v2/{REPOSITORY}/manifests/{tag}", headers={"Accept": MANIFEST})[0] == 200:
        return
    raw, compressed = layer(ready)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Cmd": ["/bin/start"],
                "Env": ["PATH=/bin", f"APP_VERSION={version}", f"ITEMS_STATUS={items_status}"],
                "User": "10001:10001",
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        }
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config),
            "digest": upload(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": len(compressed),
                "digest": upload(compressed),
            }
        ],
    }
    status, _, body = request(
        "PUT", f"/v2/{REPOSITORY}/manifests/{tag}", json.dumps(manifest).encode(), {"Content-Type": MANIFEST}
    )
    assert status == 201, (status, body)
    print("pushed", tag)


push("v1", "v1", True)
push("v2", "v2", True)
push("v3-unready", "v3-unready", False)
push("v4-errors", "v4-errors", True, 500)

"""Push and pull a tiny image through the registry's HTTP API (run inside the registry host).

python3 registry_client.py CA_FILE BASE_URL PUSH_USER:PASSWORD PULL_USER:PASSWORD
Prints one JSON object: the status of each step, the pushed manifest digest, the digest the
pull saw, whether the pulled layer matched, and the repository's tags.
Standard library only: the host has python3 and nothing else of the test's.
"""

import base64
import gzip
import hashlib
import http.client
import io
import json
import ssl
import sys
import tarfile
import time
import urllib.parse

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class Registry:
    def __init__(self, base, context):
        self.base = urllib.parse.urlsplit(base)
        self.context = context

    def call(self, auth, method, path, *, body=None, headers=None):
        """One request; (status, headers, body). PATH may be an absolute URL (upload locations)."""
        target = urllib.parse.urlsplit(path)
        path = target.path + ("?" + target.query if target.query else "")
        conn = http.client.HTTPSConnection(self.base.hostname, self.base.port, context=self.context, timeout=10)
        try:
            sent = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode(), **(headers or {})}
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def push_blob(self, auth, repo, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, headers, _ = self.call(auth, "POST", f"/v2/{repo}/blobs/uploads/")
        if status != 202:
            return status, digest
        location = headers["Location"]
        separator = "&" if "?" in location else "?"
        status, _, _ = self.call(
            auth,
            "PUT",
            f"{location}{separator}digest={digest}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return status, digest


def tiny_layer():
    content = f"pushed by the molecule test at {time.time()}\n".encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0), hashlib.sha256(raw.getvalue()).hexdigest()


def main():
    ca_file, base, push_auth, pull_auth = sys.argv[1:5]
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    registry = Registry(base, context)
    repo = "molecule/tiny"
    layer, diff_id = tiny_layer()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]}}
    ).encode()
    result = {}
    result["layer_push"], layer_digest = registry.push_blob(push_auth, repo, layer)
    result["config_push"], config_digest = registry.push_blob(push_auth, repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": config_digest},
            "layers": [{"mediaType": LAYER_TYPE, "size": len(layer), "digest": layer_digest}],
        }
    ).encode()
    status, headers, _ = registry.call(
        push_auth, "PUT", f"/v2/{repo}/manifests/v1", body=manifest, headers={"Content-Type": MANIFEST_TYPE}
    )
    result["manifest_push"] = status
    result["pushed_digest"] = headers.get("Docker-Content-Digest")
    status, _, body = registry.call(pull_auth, "GET", f"/v2/{repo}/manifests/v1", headers={"Accept": MANIFEST_TYPE})
    result["manifest_pull"] = status
    result["pulled_digest"] = "sha256:" + hashlib.sha256(body).hexdigest()
    status, _, blob = registry.call(pull_auth, "GET", f"/v2/{repo}/blobs/{layer_digest}")
    result["layer_pull"] = status
    result["layer_matches"] = blob == layer
    status, _, tags = registry.call(pull_auth, "GET", f"/v2/{repo}/tags/list")
    result["tags"] = json.loads(tags).get("tags") if status == 200 else status
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Stand-in for the get-pip bootstrap script ansible-test downloads.

ansible-test bootstraps pip in each sanity virtualenv with a get-pip script fetched from a
host that may be unreachable. When the script is cached it is used instead, so
tests/tools/sanity copies this file there. It installs the pip that ships with Python
(ensurepip), then runs `pip install` with the arguments ansible-test gave, minus get-pip's
own flags and with the machine's CA bundle (ansible-test trims the environment).
"""

import os
import subprocess
import sys

GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def main() -> int:
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY_FLAGS]
    if os.path.exists(CA_BUNDLE):
        args = ["--cert", CA_BUNDLE, *args]
    return subprocess.run([sys.executable, "-m", "pip", "install", *args], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())

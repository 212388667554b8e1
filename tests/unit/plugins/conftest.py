"""Make the collection importable as ``ansible_collections.corvid.platform`` for the plugin unit tests.

In the repository the collection root is linked at ``.cache/collections/ansible_collections/corvid/platform``
(``make venv`` creates the link); under ansible-test the tree already sits in an ``ansible_collections``
directory. Without either, a link is made in a temporary directory.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _collections_dir() -> Path:
    if ROOT.parent.name == "corvid" and ROOT.parent.parent.name == "ansible_collections":
        return ROOT.parents[2]
    cached = ROOT / ".cache" / "collections"
    if (cached / "ansible_collections" / "corvid" / "platform" / "plugins").is_dir():
        return cached
    temp = Path(tempfile.mkdtemp(prefix="corvid-collections-"))
    atexit.register(shutil.rmtree, temp, True)
    (temp / "ansible_collections" / "corvid").mkdir(parents=True)
    (temp / "ansible_collections" / "corvid" / "platform").symlink_to(ROOT)
    return temp


_path = str(_collections_dir())
if _path not in sys.path:
    sys.path.insert(0, _path)

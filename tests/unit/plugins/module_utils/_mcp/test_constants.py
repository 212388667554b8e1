"""_mcp/constants.py: the client version is the collection's, the latency stages follow the stages."""

from __future__ import annotations

from pathlib import Path

import yaml
from ansible_collections.corvid.platform.plugins.module_utils._mcp import constants

ROOT = Path(__file__).resolve().parents[5]


def test_client_version_is_the_collection_version():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert galaxy["version"] == constants.CLIENT_VERSION
    assert "corvid.platform.mcp_check/" + galaxy["version"] == constants.USER_AGENT


def test_derived_option_lists():
    assert (*constants.STAGES, "total") == constants.LATENCY_STAGES
    assert tuple(name for name in constants.DEFAULTS if name != "name") == constants.PER_ENDPOINT_OPTIONS

"""_mcp/errors.py: the option error both the client and the metrics writer raise."""

from __future__ import annotations

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ConfigError, OptionError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.metrics import MetricsError


@pytest.mark.parametrize("cls", [OptionError, ConfigError, MetricsError])
def test_option_and_message_are_attributes(cls):
    exc = cls("timeout", "must be greater than 0 seconds: got -1")
    assert exc.option == "timeout" and exc.message == "must be greater than 0 seconds: got -1"
    assert str(exc) == "timeout: must be greater than 0 seconds: got -1"
    assert isinstance(exc, OptionError)


@pytest.mark.parametrize("cls", [ConfigError, MetricsError])
def test_prefixed_keeps_class_and_message(cls):
    exc = cls("ca_path", "cannot load CA bundle /x: [Errno 2] No such file: '/x'").prefixed("endpoints[3].")
    assert exc.__class__ is cls
    assert exc.option == "endpoints[3].ca_path"
    assert exc.message == "cannot load CA bundle /x: [Errno 2] No such file: '/x'"
    assert str(exc) == "endpoints[3].ca_path: cannot load CA bundle /x: [Errno 2] No such file: '/x'"

# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The error of an unusable module option, shared by the MCP client and the metrics writer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects


class OptionError(Exception):
    """A module option has a value that cannot be used: ``option`` names it, ``message`` says why."""

    def __init__(self, option, message):
        super().__init__("%s: %s" % (option, message))
        self.option = option
        self.message = message

    def prefixed(self, prefix):
        """The same error, of the same class, for the option named with ``prefix`` (``endpoints[2].``)."""
        return type(self)(prefix + self.option, self.message)

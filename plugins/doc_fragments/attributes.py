# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects


class ModuleDocFragment:
    """The attributes every module of the collection documents, with the meaning ansible-core gives them.

    A module extends ``corvid.platform.attributes`` and states, under ``attributes``, the ``support``
    (full, partial or none) and, where it is not plain, ``details`` of each.
    """

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description:
      - Whether the module can run in check mode, reporting what it would change without changing
        the target.
  diff_mode:
    description:
      - Whether the module returns what changed (or, in check mode, what would change) when run in
        diff mode.
  idempotent:
    description:
      - Whether a second run right after the first, outside check mode and with the same arguments,
        reports no change, provided nothing relevant changed on the target in between.
"""

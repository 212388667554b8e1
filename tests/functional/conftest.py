"""The shared preflight runner's assertions report their operands, as the tests' own do."""

import pytest

pytest.register_assert_rewrite("preflight_cases")

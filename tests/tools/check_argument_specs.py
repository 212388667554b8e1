#!/usr/bin/env python3
"""Each role's meta/argument_specs.yml documents exactly the variables of its defaults/main.yml.

For every role: the keys of defaults/main.yml equal the options of its entry points (`main`,
and for the internal `common` every `tasks_from` entry point);
every option has a description and a type; a documented default equals the value in
defaults/main.yml (templated defaults are compared as written). Exit 1 listing every gap.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def check_role(role: Path) -> list[str]:
    name = role.name
    spec_file = role / "meta" / "argument_specs.yml"
    defaults_file = role / "defaults" / "main.yml"
    if not spec_file.is_file():
        return [f"roles/{name}: meta/argument_specs.yml is missing"]
    spec = yaml.safe_load(spec_file.read_text()) or {}
    main = (spec.get("argument_specs") or {}).get("main")
    if not main:
        return [f"roles/{name}: meta/argument_specs.yml has no `main` entry point"]
    options = {}
    for entry in spec["argument_specs"].values():
        options.update((entry or {}).get("options") or {})
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.is_file() else {}

    problems = []
    for key in sorted(set(defaults) - set(options)):
        problems.append(f"roles/{name}: `{key}` is in defaults/main.yml but not in meta/argument_specs.yml")
    # A required option of an entry point (e.g. nginx's `upstream`) has no default by design.
    required = {key for key, option in options.items() if (option or {}).get("required")}
    for key in sorted(set(options) - set(defaults) - required):
        problems.append(f"roles/{name}: `{key}` is in meta/argument_specs.yml but not in defaults/main.yml")
    for key, raw_option in sorted(options.items()):
        option = raw_option or {}
        if not option.get("description"):
            problems.append(f"roles/{name}: `{key}` has no description in meta/argument_specs.yml")
        if not option.get("type"):
            problems.append(f"roles/{name}: `{key}` has no type in meta/argument_specs.yml")
        if "default" in option and key in defaults and option["default"] != defaults[key]:
            problems.append(
                f"roles/{name}: `{key}` defaults to {defaults[key]!r} in defaults/main.yml "
                f"but to {option['default']!r} in meta/argument_specs.yml"
            )
    return problems


def main() -> int:
    roles = sorted(p for p in (ROOT / "roles").glob("*") if p.is_dir())
    problems = [problem for role in roles for problem in check_role(role)]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"argument_specs: {len(roles)} role(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# The unit tests (frames, dates, analysis, plots, the cache, the transport) under the OLDEST
# pandas, pyarrow, requests and requests-cache that pyproject.toml allows ("pandas>=2.1" ...),
# in a virtualenv of its own with everything else from PyPI; the main run covers the newest.
# pandas 2.1 wheels are built against numpy 1, hence "numpy<2" (and pyarrow at its floor too:
# newer wheels need numpy 2).
# OLDEST_PANDAS_VENV chooses the virtualenv's directory (default: a fresh one under TMPDIR).
set -euo pipefail
cd "$(dirname "$0")/.."
# "pandas==2.1.* pyarrow==14.* requests==2.32.2 requests-cache==1.2.*": each floor, a release
# with two numbers taken as its series, one with three as it is
floors="$(python3 - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
out = []
for name in ("pandas", "pyarrow", "requests", "requests-cache"):
    spec = next(d for d in deps if re.match(rf"{re.escape(name)}(?![\w-])", d))
    floor = re.search(r">=\s*([0-9.]+)", spec).group(1)
    out.append(f"{name}=={floor}" + (".*" if floor.count(".") < 2 else ""))
print(" ".join(out))
PY
)"
venv="${OLDEST_PANDAS_VENV:-$(mktemp -d "${TMPDIR:-/tmp}/oldest-pandas.XXXXXX")}"
python3 -m venv "$venv"
# shellcheck disable=SC2086  # one argument per floor
"$venv/bin/pip" install -q --disable-pip-version-check -e ".[test]" $floors "numpy<2"
"$venv/bin/python" - $floors <<'PY'
import importlib.metadata
import sys

for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    have = importlib.metadata.version(name)
    assert have == want or (want.endswith(".*") and have.startswith(want[:-1])), (name, have)
    print(name, have, end="; ")
print("in", sys.prefix)
PY
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit

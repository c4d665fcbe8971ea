#!/usr/bin/env bash
# The unit tests (frames, dates, analysis, plots) under the OLDEST pandas that pyproject.toml
# allows ("pandas>=2.1"), in a virtualenv of its own with everything else from PyPI; the main
# run covers the newest. pandas 2.1 wheels are built against numpy 1, hence "numpy<2".
# OLDEST_PANDAS_VENV chooses the virtualenv's directory (default: a fresh one under TMPDIR).
set -euo pipefail
cd "$(dirname "$0")/.."
oldest="$(python3 - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
spec = next(d for d in deps if re.match(r"pandas\b", d))
print(re.search(r">=\s*([0-9.]+)", spec).group(1))
PY
)"
venv="${OLDEST_PANDAS_VENV:-$(mktemp -d "${TMPDIR:-/tmp}/oldest-pandas.XXXXXX")}"
python3 -m venv "$venv"
# pyarrow at the oldest pyproject.toml allows too: newer wheels need numpy 2, pandas 2.1 numpy 1
oldest_pyarrow="$(python3 - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
spec = next(d for d in deps if re.match(r"pyarrow\b", d))
print(re.search(r">=\s*([0-9.]+)", spec).group(1))
PY
)"
"$venv/bin/pip" install -q --disable-pip-version-check -e ".[test]" "pandas==${oldest}.*" \
    "numpy<2" "pyarrow==${oldest_pyarrow}.*"
"$venv/bin/python" - "$oldest" <<'PY'
import sys
import pandas
assert pandas.__version__.startswith(sys.argv[1] + "."), pandas.__version__
print("pandas", pandas.__version__, "in", sys.prefix)
PY
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit

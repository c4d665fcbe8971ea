"""What the benchmarks share: which registry_insights a run measured."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def source_version(with_hash: bool = True) -> str:
    """Which registry_insights was measured: its directory, a hash of its sources (optional),
    and in a git checkout its commit (``+uncommitted changes`` when its files differ)."""
    import registry_insights

    package = Path(registry_insights.__file__).resolve().parent
    text = f"`{package}`"
    if with_hash:
        digest = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):  # subpackages too
            digest.update(path.relative_to(package).as_posix().encode() + b"\0"
                          + path.read_bytes())
        text += f", sources sha256 {digest.hexdigest()[:12]}"
    try:
        commit = subprocess.run(["git", "-C", str(package), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "."],
                               capture_output=True, text=True, check=True).stdout.strip()
        text += f", git {commit}" + (" +uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return text

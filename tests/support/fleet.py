"""Small deterministic fleets pushed through the real HTTP API (test support)."""

from __future__ import annotations

from registry_insights.testing.demo import FleetBuilder, SeededImage


def push_fleet(client, prefix: str, repositories: int = 3, tags: int = 4, seed: int = 1,
               index_every: int = 3) -> list[SeededImage]:
    """Push ``repositories`` x ``tags`` tags under ``prefix/r<i>``; every ``index_every``-th tag
    is a two-platform index. Each repository also gets ``latest`` on its newest build, so
    two tags share that digest."""
    fleet = FleetBuilder(client, seed)
    base = fleet.layer(20_000, f"{prefix}-base")
    arm = fleet.layer(18_000, f"{prefix}-base-arm")
    for r in range(repositories):
        repo = f"{prefix}/r{r}"
        for t in range(tags):
            app = fleet.layer(1_000 + 100 * t, f"{repo}-{t}")
            created = f"2025-0{1 + t % 9}-1{r}T10:00:00Z"
            names = [f"v{t}"] + (["latest"] if t == tags - 1 else [])
            if index_every and t % index_every == index_every - 1:
                fleet.build(repo, names, {"linux/amd64": [base, app], "linux/arm64": [arm, app]},
                            created, oci=bool(t % 2))
            else:
                fleet.build(repo, names, {"linux/amd64": [base, app]}, created, oci=bool(t % 2))
    return fleet.images

"""Frames of what a registry holds, built from :class:`~registry_insights.client.RegistryClient`.

The walk: catalog (unless repositories are given) -> tag lists -> one manifest per tag -> the
platform manifests of indexes -> one config per distinct config digest, concurrently, through
the client's HTTP cache (a second walk is answered from it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from .client import RegistryClient
from .models import TagDetails
from .schema import LAYERS_SCHEMA, TAGS_SCHEMA, coerce, empty


@dataclass
class Inventory:
    """The result of one walk: the repositories listed and every tag's details."""

    registry: str
    repositories: list[str]
    details: list[TagDetails] = field(repr=False)

    def tags(self, attestations: bool = False) -> pd.DataFrame:
        """The tags frame (:data:`~registry_insights.schema.TAGS_SCHEMA`)."""
        rows = []
        for d in self.details:
            images = list(d.images) + (list(d.others) if attestations else [])
            for image in images:
                rows.append({
                    "registry": self.registry, "repository": d.repository, "tag": d.tag,
                    "digest": d.digest, "media_type": d.media_type, "size": d.size,
                    "platform": image.platform, "manifest_digest": image.manifest_digest,
                    "manifest_media_type": image.manifest_media_type,
                    "manifest_size": image.manifest_size, "config_digest": image.config_digest,
                    "config_size": image.config_size, "created_at": image.created,
                    "layer_size": image.layer_size, "layer_count": len(image.layers),
                    "architecture": image.architecture, "os": image.os,
                    "variant": image.config.get("variant") if image.config else None,
                    "is_image": image.is_image, "config": image.config,
                })
        return coerce(pd.DataFrame(rows), TAGS_SCHEMA) if rows else empty(TAGS_SCHEMA)

    def layers(self, attestations: bool = False) -> pd.DataFrame:
        """The layers frame (:data:`~registry_insights.schema.LAYERS_SCHEMA`)."""
        rows = []
        for d in self.details:
            images = list(d.images) + (list(d.others) if attestations else [])
            for image in images:
                for position, layer in enumerate(image.layers):
                    rows.append({
                        "registry": self.registry, "repository": d.repository, "tag": d.tag,
                        "platform": image.platform, "manifest_digest": image.manifest_digest,
                        "layer_digest": layer.digest, "size": layer.size,
                        "media_type": layer.media_type, "position": position,
                        "is_image": image.is_image,
                    })
        return coerce(pd.DataFrame(rows), LAYERS_SCHEMA) if rows else empty(LAYERS_SCHEMA)


def fetch_inventory(client: RegistryClient, repositories: Iterable[str] | None = None,
              progress: bool | None = None) -> Inventory:
    """Walk the registry once and keep every tag's details.

    Parameters
    ----------
    repositories : iterable of str, optional
        Repositories to read; default every repository of the catalog.
    progress : bool, optional
        A progress bar (tqdm.auto); default on in a terminal or notebook only.
    """
    repos = sorted(set(repositories)) if repositories is not None else client.repositories()
    client.plan_repositories(repos)
    tag_lists = client.map(client.tags, repos, progress, "tag lists" if len(repos) > 20 else "")
    pairs = [(repo, tag) for repo, tags in zip(repos, tag_lists) for tag in tags]
    details = client.details_many(pairs, progress=progress)
    return Inventory(client.registry, repos, details)


def tags_frame(client: RegistryClient, repositories: Iterable[str] | None = None,
               progress: bool | None = None, attestations: bool = False) -> pd.DataFrame:
    """One row per (repository, tag, platform): :data:`~registry_insights.schema.TAGS_SCHEMA`.

    Columns: registry, repository, tag, digest (what the tag points to), media_type, size (bytes
    of that manifest), platform (``os/architecture[/variant]``), manifest_digest (the platform's
    own manifest), manifest_media_type, manifest_size, config_digest, config_size, created_at
    (``datetime64[ns, UTC]``, NaT when missing or unparseable), layer_size (``Int64`` bytes,
    compressed), layer_count, architecture, os, variant, is_image, config (dict).
    Attestations (``unknown/unknown`` index entries) only with ``attestations=True``.

    Raises
    ------
    RegistryError
        As the client raises it (e.g. Unauthorized for the catalog; pass ``repositories``).
    """
    return fetch_inventory(client, repositories, progress).tags(attestations)


def layers_frame(client: RegistryClient, repositories: Iterable[str] | None = None,
                 progress: bool | None = None, attestations: bool = False) -> pd.DataFrame:
    """One row per (repository, tag, platform, layer): :data:`LAYERS_SCHEMA`.

    Served from the client's HTTP cache when the tags were just read (no second round of
    manifest requests while the answers are fresh).
    """
    return fetch_inventory(client, repositories, progress).layers(attestations)

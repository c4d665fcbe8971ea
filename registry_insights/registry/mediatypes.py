"""Media types of the OCI image-spec and the Docker image manifest v2 (schema 1 and 2)."""

from __future__ import annotations

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
#: The OCI non-distributable layer types (deprecated in image-spec 1.1, still in registries).
OCI_NONDISTRIBUTABLE_PREFIX = "application/vnd.oci.image.layer.nondistributable."
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
IN_TOTO = "application/vnd.in-toto+json"

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"

IMAGE_MANIFESTS = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEXES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
SCHEMA1 = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
IMAGE_CONFIGS = frozenset({DOCKER_CONFIG, OCI_CONFIG})

#: What ``client.manifest`` asks for. Without the OCI types Distribution answers 404 for OCI
#: manifests; without the schema 2 types it converts to schema 1.
MANIFEST_ACCEPT = ", ".join(
    [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED,
     DOCKER_SCHEMA1]
)

#: Annotation buildkit puts on attestation manifests inside an index.
REFERENCE_TYPE_ANNOTATION = "vnd.docker.reference.type"

#: Annotation for the creation time of an artifact (OCI image-spec, "Pre-Defined Annotation
#: Keys"); used when a manifest has no image config ``created``.
CREATED_ANNOTATION = "org.opencontainers.image.created"

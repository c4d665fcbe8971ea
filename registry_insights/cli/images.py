"""Commands on repositories and images: ls, inspect, manifest, config, digest, rm, pull, tag."""

from __future__ import annotations

import json
import sys

from .. import errors
from .common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    Target,
    UsageError,
    command,
    connect,
    connection_options,
    legacy_image,
    output_options,
    parse_target,
    platform,
    platform_matches,
)

REF = "HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]"


def target_and_platform(p, platform_help: str) -> None:
    """The ``REF`` argument and ``--platform`` (what it selects: ``platform_help``)."""
    p.add_argument("target", metavar=REF)
    p.add_argument("--platform", type=platform, metavar="OS/ARCH[/VARIANT]", help=platform_help)


def register(sub) -> None:
    """Add the image commands to the subparsers ``sub``."""
    p = command(sub, "ls", "list repositories, or a repository's tags (digest, date, size)",
                "registry-insights ls localhost:5000              # repositories\n"
                "registry-insights ls localhost:5000/team/        # repositories under team/\n"
                "registry-insights ls localhost:5000/team/app --format json | jq .tag",
                description="Without a repository: the repositories of the catalog (those "
                            "under PREFIX/ with a trailing slash). With one: its tags, each "
                            "with the digest it points to, its platforms, build date (UTC) and "
                            "compressed layer bytes (summed over platforms).")
    p.add_argument("target", metavar="HOST[:PORT][/PREFIX/|/REPOSITORY]")
    connection_options(p)
    output_options(p)
    p.set_defaults(handler=ls)

    p = command(sub, "inspect", "an image's digest, media type, platforms, created, labels, "
                "layers and the other tags on its digest (like skopeo inspect)",
                "registry-insights inspect localhost:5000/team/app:v1.2.3 --platform "
                "linux/arm64")
    target_and_platform(p, "only this platform of a multi-arch image (default: every platform)")
    connection_options(p)
    output_options(p)
    p.set_defaults(handler=inspect)
    _register_reading(sub)
    _register_changing(sub)


def _register_reading(sub) -> None:
    """``manifest``, ``config``, ``digest``."""
    # the commands that read one reference, table-like: (name, summary, examples, what
    # --platform selects, output format default, note on the default format, handler)
    for name, summary, examples, platform_help, default, note, handler in (
        ("manifest", "print the manifest or index exactly as the registry sends it",
         "registry-insights manifest localhost:5000/team/app:v1 | jq .mediaType\n"
         "registry-insights manifest localhost:5000/team/app:v1 --platform linux/arm64",
         "the platform's own manifest instead of the index",
         "json", ": the raw bytes; table and csv list the descriptors", manifest),
        ("config", "print an image's config JSON exactly as stored",
         "registry-insights config localhost:5000/team/app:v1 --platform linux/amd64 "
         "| jq .config.Env",
         "which image of a multi-arch index (needed when it has several)",
         "json", ": the raw bytes; table and csv list its fields", config),
        ("digest", "print the digest a tag points to (asked fresh, HEAD)",
         "registry-insights digest localhost:5000/team/app:v1\n"
         "registry-insights digest localhost:5000/team/app:v1 --platform linux/arm64",
         "the platform manifest's digest instead of the index's",
         None, ": the bare digest", digest),
    ):
        p = command(sub, name, summary, examples)
        target_and_platform(p, platform_help)
        connection_options(p)
        output_options(p, default=default or "table", note=note)
        p.set_defaults(handler=handler)


def _register_changing(sub) -> None:
    """``rm``, ``pull`` and the older ``tag``."""
    p = command(sub, "rm", "delete one tag (its sibling tags stay) or a manifest by digest",
                "registry-insights rm localhost:5000/team/app:pr-41 --yes\n"
                "registry-insights rm localhost:5000/team/app@sha256:4f1c...   # asks first",
                description="REPOSITORY:TAG deletes that tag only: other tags on the same "
                            "digest survive. REPOSITORY@DIGEST deletes the manifest and every "
                            "tag that points to it; they are listed first. Asks for "
                            "confirmation on a terminal; elsewhere --yes is required. Space "
                            "comes back at the registry's next garbage collection.")
    p.add_argument("target", metavar="HOST[:PORT]/REPOSITORY(:TAG|@DIGEST)")
    p.add_argument("-y", "--yes", action="store_true", help="delete without asking")
    connection_options(p)
    output_options(p)
    p.set_defaults(handler=rm)

    p = command(sub, "pull", "pull an image into an OCI image layout directory",
                "registry-insights pull localhost:5000/team/app:v1 layout/ --platform "
                "linux/arm64\n"
                "registry-insights pull localhost:5000 team/app:v1 layout/   # older form",
                usage="registry-insights pull [options] (REF | URL REPO:TAG) DIR")
    p.add_argument("operands", nargs="+", metavar="REF DIR",
                   help=f"{REF} and the layout directory (new, empty or one written before: "
                        "pulls share blobs); or URL REPO:TAG DIR")
    p.add_argument("--platform", type=platform, help="only this platform of a multi-arch "
                   "image, e.g. linux/arm64 (default: every platform)")
    connection_options(p)
    output_options(p)
    p.set_defaults(handler=pull)

    p = command(sub, "tag", "one tag's details as JSON (older name of inspect)",
                "registry-insights tag localhost:5000/team/app:v1\n"
                "registry-insights tag localhost:5000 team/app v1        # older form",
                usage="registry-insights tag [options] (REF | URL REPOSITORY TAG)")
    p.add_argument("operands", nargs="+", metavar="REF",
                   help=f"{REF}, or URL REPOSITORY TAG")
    p.add_argument("--platform", type=platform, metavar="OS/ARCH[/VARIANT]",
                   help="only this platform of a multi-arch image")
    connection_options(p)
    output_options(p, default="json")
    p.set_defaults(handler=tag)


# -- ls --------------------------------------------------------------------------------------
def ls(args, out) -> int:
    target = parse_target(args.target)
    if target.reference:
        raise UsageError(f"{args.target!r}: ls lists a registry or a repository; for one "
                         "image use inspect")
    with connect(args, target) as client:
        if target.repository and not target.prefix:
            try:
                return _ls_tags(client, target, out)
            except errors.NotFound:  # not a repository: perhaps a prefix of some
                try:
                    names = _repositories(client, target.repository + "/", out)
                except errors.CatalogUnavailable:
                    names = []
                if not names:
                    raise
                return _ls_repositories(names, out)
        prefix = f"{target.repository}/" if target.repository else ""
        return _ls_repositories(_repositories(client, prefix, out), out)


def _repositories(client, prefix: str, out) -> list[str]:
    with out.phase(f"reading the catalog of {client.registry}"):
        names = client.repositories()
    return [n for n in names if n.startswith(prefix)]


def _ls_repositories(names: list[str], out) -> int:
    out.rows([{"repository": n} for n in names], [("repository", "text")])
    return EXIT_OK


def _ls_tags(client, target: Target, out) -> int:
    from ..analysis.retention import collapse_platforms
    from ..frames.inventory import fetch_inventory

    with out.phase(f"reading the tags of {target.repository}"):
        inventory = fetch_inventory(client, [target.repository], progress=out.progress)
    frame = collapse_platforms(inventory.tags())
    frame = frame.sort_values("tag", kind="stable")
    records = [{"repository": r.repository, "tag": r.tag, "digest": r.digest,
                "media_type": r.media_type,
                "platforms": [p for p in str(r.platforms).split(",") if p],
                "created_at": r.created_at, "layer_size": r.layer_size}
               for r in frame.itertuples()]
    columns = [("tag", "text"), ("digest", "digest"), ("platforms", "text"),
               ("created_at", "time"), ("layer_size", "bytes")]
    if out.format != "table":
        columns = [("repository", "text"), *columns[:2], ("media_type", "text"), *columns[2:]]
    out.rows(records, columns)
    return EXIT_OK


# -- inspect and tag -------------------------------------------------------------------------
def _details(client, target: Target, wanted: str | None, out):
    with out.phase(f"reading {target.image()}"):
        details = client.tag_details(target.repository, target.manifest_reference)
    images = list(details.images)
    if wanted:
        images = [i for i in images if platform_matches(wanted, i.platform)]
        if not images:
            have = ", ".join(i.platform for i in details.images) or "none"
            raise errors.NotFound(f"{target.image()} has no platform {wanted} (it has: {have})")
    return details, images


def _inspect_record(client, target: Target, details, images, out) -> dict:
    with out.phase(f"finding the tags on {details.digest[:19]}"):
        tags = client.tags_of_digest(target.repository, details.digest)
    record = {
        "registry": client.host, "repository": target.repository,
        "tag": None if target.digest or not target.manifest_reference else
        target.manifest_reference,
        "digest": details.digest, "media_type": details.media_type, "size": details.size,
        "tags": tags, "platforms": [i.platform for i in details.images], "images": [],
    }
    for image in images:
        cfg = image.config or {}
        record["images"].append({
            "platform": image.platform, "manifest_digest": image.manifest_digest,
            "media_type": image.manifest_media_type, "config_digest": image.config_digest,
            "created_at": image.created_at, "labels": (cfg.get("config") or {}).get("Labels")
            or {},
            "layer_size": image.layer_size, "layer_count": len(image.layers),
            "layers": [{"digest": d.digest, "size": d.size, "media_type": d.media_type}
                       for d in image.layers],
        })
    return record


def inspect(args, out) -> int:
    target = parse_target(args.target, repository=True)
    with connect(args, target) as client:
        details, images = _details(client, target, args.platform, out)
        record = _inspect_record(client, target, details, images, out)
    if out.format == "csv":  # one row per image
        rows = [{"repository": record["repository"], "tag": record["tag"],
                 "digest": record["digest"], "media_type": record["media_type"],
                 "tags": record["tags"], **{k: v for k, v in image.items() if k != "layers"}}
                for image in record["images"]]
        out.rows(rows, [(k, "text") for k in (
            "repository", "tag", "digest", "media_type", "tags", "platform", "manifest_digest",
            "config_digest", "created_at", "layer_size", "layer_count", "labels")])
        return EXIT_OK
    out.record(record, _inspect_lines(record))
    return EXIT_OK


def _inspect_lines(record: dict) -> list[str]:
    from ..units import format_bytes
    from .common import plain, table

    lines = [f"{record['registry']}/{record['repository']}"
             + (f":{record['tag']}" if record["tag"] else f"@{record['digest']}"),
             f"  digest      {record['digest']}",
             f"  media type  {record['media_type']} ({record['size']} bytes)",
             f"  tags        {', '.join(record['tags']) or '-'}",
             f"  platforms   {', '.join(record['platforms']) or '-'}"]
    for image in record["images"]:
        created = plain(image["created_at"]) or "unknown"
        lines += ["", f"  {image['platform']}  {image['manifest_digest']}",
                  f"    created   {created}",
                  f"    config    {image['config_digest'] or '-'}",
                  f"    layers    {image['layer_count']}, "
                  f"{format_bytes(image['layer_size'])} compressed"]
        for key, value in sorted(image["labels"].items()):
            lines.append(f"    label     {key}={value}")
        rows = [{"digest": d["digest"] or "", "size": format_bytes(d["size"]),
                 "media_type": d["media_type"] or ""} for d in image["layers"]]
        if rows:
            lines += table(rows, ["digest", "size", "media_type"], right={"size"},
                           indent="    ").rstrip("\n").split("\n")
    return lines


def tag(args, out) -> int:
    if len(args.operands) == 1:
        target = parse_target(args.operands[0], repository=True)
    elif len(args.operands) == 3:
        url, repository, name = args.operands
        from ..registry.names import validate_repository, validate_tag

        validate_repository(repository)
        validate_tag(name)
        target = legacy_image(url, f"{repository}:{name}")
    else:
        raise UsageError("tag takes REF, or URL REPOSITORY TAG")
    args.target = str(target)
    return inspect(args, out)


# -- manifest, config, digest ----------------------------------------------------------------
def _pick_manifest(client, target: Target, wanted: str | None, out):
    """The manifest of ``target``, or with ``wanted`` its platform's own manifest."""
    with out.phase(f"reading {target.image()}"):
        top = client.manifest(target.repository, target.manifest_reference)
    if not wanted:
        return top
    if top.is_index:
        entries = [e for e in top.manifests if e.platform is not None
                   and not e.is_attestation and platform_matches(wanted, str(e.platform))]
        if not entries:
            have = ", ".join(str(e.platform) for e in top.manifests
                             if e.platform is not None and not e.is_attestation)
            raise errors.NotFound(f"{target.image()} has no platform {wanted} (it has: {have})")
        return client.manifest(target.repository, entries[0].digest)
    _details_, images = _details(client, target, wanted, out)  # NotFound when it differs
    return top


def manifest(args, out) -> int:
    target = parse_target(args.target, repository=True)
    with connect(args, target) as client:
        found = _pick_manifest(client, target, args.platform, out)
    if out.format == "json":
        out.raw(found.raw)
        return EXIT_OK
    rows = []
    cfg = found.config
    if cfg is not None:
        rows.append({"role": "config", "media_type": cfg.media_type, "digest": cfg.digest,
                     "size": cfg.size, "platform": None})
    for layer in found.layers:
        rows.append({"role": "layer", "media_type": layer.media_type, "digest": layer.digest,
                     "size": layer.size, "platform": None})
    for entry in found.manifests:
        role = "attestation" if entry.is_attestation else "manifest"
        rows.append({"role": role, "media_type": entry.media_type, "digest": entry.digest,
                     "size": entry.size,
                     "platform": str(entry.platform) if entry.platform else None})
    if out.format == "table":
        out.status(f"{found.media_type} {found.digest} ({found.size} bytes)")
    out.rows(rows, [("role", "text"), ("platform", "text"), ("digest", "digest"),
                    ("size", "bytes"), ("media_type", "text")])
    return EXIT_OK


def config(args, out) -> int:
    target = parse_target(args.target, repository=True)
    with connect(args, target) as client:
        details, images = _details(client, target, args.platform, out)
        if len(images) != 1:
            have = ", ".join(i.platform for i in images) or "none"
            raise UsageError(f"{target.image()} is a multi-platform index ({have}): pick one "
                             "with --platform")
        image = images[0]
        if not image.config_digest:
            raise errors.NotFound(f"{target.image()} ({image.platform}) has no config blob")
        raw = client.blob_bytes(target.repository, image.config_digest)
    if out.format == "json":
        out.raw(raw)
        return EXIT_OK
    data = json.loads(raw)
    rows = []
    for key, value in data.items():
        if isinstance(value, dict) and key in ("config", "container_config"):
            rows += [{"field": f"{key}.{k}", "value": _flat(v)} for k, v in value.items()]
        elif key == "history" and isinstance(value, list):
            rows.append({"field": "history", "value": f"{len(value)} entries"})
        elif key == "rootfs" and isinstance(value, dict):
            rows.append({"field": "rootfs.diff_ids",
                         "value": f"{len(value.get('diff_ids') or [])} layers"})
        else:
            rows.append({"field": key, "value": _flat(value)})
    out.rows(rows, [("field", "text"), ("value", "text")])
    return EXIT_OK


def _flat(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def digest(args, out) -> int:
    target = parse_target(args.target, repository=True)
    with connect(args, target) as client:
        if args.platform:
            _d, images = _details(client, target, args.platform, out)
            image = images[0]
            record = {"reference": str(target), "platform": image.platform,
                      "digest": image.manifest_digest, "media_type": image.manifest_media_type,
                      "size": image.manifest_size}
        else:
            head = client.head_manifest(target.repository, target.manifest_reference)
            record = {"reference": str(target), "platform": None, "digest": head.digest,
                      "media_type": head.media_type, "size": head.size}
    out.record(record, [record["digest"]])
    return EXIT_OK


# -- rm --------------------------------------------------------------------------------------
def rm(args, out) -> int:
    target = parse_target(args.target, repository=True, reference=True)
    repo = target.repository
    with connect(args, target, freshness=0.0) as client:
        with out.phase(f"reading the tags of {repo}"):
            if target.digest:
                client.head_manifest(repo, target.digest)  # NotFound: nothing to delete
                going = client.tags_of_digest(repo, target.digest)
                digest_, kept = target.digest, []
            else:
                head = client.head_manifest(repo, target.tag)
                digest_ = head.digest
                kept = [t for t in client.tags_of_digest(repo, digest_) if t != target.tag]
                going = [target.tag]
        if target.digest:
            plan = (f"delete manifest {repo}@{digest_} and the tags that point to it: "
                    f"{', '.join(going) or '(none: it is untagged)'}")
        else:
            plan = f"delete tag {repo}:{target.tag} (on {digest_})"
            if kept:
                plan += f"; its sibling tags stay: {', '.join(kept)}"
        if args.yes:
            out.status(plan)
        else:  # shown even with --quiet: the question needs it
            print(plan, file=sys.stderr, flush=True)
            if not _confirm("delete? [y/N] "):
                print("registry-insights: nothing deleted", file=sys.stderr)
                return EXIT_USAGE if not _interactive() else EXIT_FAILURE
        if target.digest:
            gone = client.delete(repo, digest=target.digest)
        else:
            gone = client.delete(repo, tag=target.tag)
    record = {"repository": repo, "reference": target.reference, "digest": digest_,
              "deleted_tags": gone, "kept_tags": kept}
    out.record(record, [f"deleted {repo}:{t}" for t in gone]
               + ([f"deleted {repo}@{digest_}"] if target.digest else [])
               + [f"kept {repo}:{t}" for t in kept]
               + ["space comes back at the registry's next garbage collection"])
    return EXIT_OK


def _interactive() -> bool:
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _confirm(question: str) -> bool:
    if not _interactive():
        print("registry-insights: standard input is not a terminal: add --yes to delete",
              file=sys.stderr)
        return False
    print(question, end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


# -- pull ------------------------------------------------------------------------------------
def pull(args, out) -> int:
    if len(args.operands) == 2:
        target = parse_target(args.operands[0], repository=True)
    elif len(args.operands) == 3:
        target = legacy_image(args.operands[0], args.operands[1])
    else:
        raise UsageError("pull takes REF DIR, or URL REPO:TAG DIR")
    directory = args.operands[-1]
    reference = target.manifest_reference
    with connect(args, target) as client:
        try:
            with out.phase(f"pulling {target.image()}"):
                path = client.pull(target.repository, reference, directory,
                                   platform=args.platform, progress=out.progress)
        except (FileExistsError, ValueError) as exc:
            if isinstance(exc, errors.RegistryInsightsError):
                raise
            raise UsageError(str(exc)) from None
    record = {"repository": target.repository, "reference": reference, "layout": str(path),
              "skopeo": _skopeo_ref(path, None if target.digest else reference)}
    hint = f" (skopeo: {record['skopeo']})" if record["skopeo"] else ""
    out.record(record, [f"pulled {target.image() if target.reference else target.repository}"
                        f"{'' if target.reference else ':latest'} into {path}{hint}"])
    return EXIT_OK


def _skopeo_ref(path, tag: str | None) -> str | None:
    """How skopeo opens the layout: by tag only for OCI media types (skopeo 1.9), by the bare
    layout only when it holds one image."""
    from ..registry import mediatypes as mt

    try:
        entries = json.loads((path / "index.json").read_text()).get("manifests") or []
    except (OSError, ValueError):
        return None
    mine = [e for e in entries
            if (e.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag]
    if tag and mine and mine[0].get("mediaType") in (mt.OCI_MANIFEST, mt.OCI_INDEX):
        return f"oci:{path}:{tag}"
    if len(entries) == 1:
        return f"oci:{path}"
    return None


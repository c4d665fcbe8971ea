"""Retention plans: which tags a cleanup deletes, as pure ``frame -> frame`` functions.

No I/O, inputs never mutated. The rules are those of GitLab's container registry cleanup
policies (``keep_n``, ``older_than``, ``name_regex_keep``, ``name_regex``) with Harbor's care
for digests, written out in :func:`retention_plan`. The plan says *what* to delete; applying
it is ``client.delete_many(deletions(plan))``, and what the registry's garbage collection then
frees is :func:`registry_insights.reclaim.reclaimable`.

The rules (:func:`retention_plan`), in order:

1. A protected tag is kept: :data:`DEFAULT_PROTECTED` (``latest``) and the tags named in
   ``protect``, which add to the defaults rather than replace them (``--protect stable``
   keeps ``latest`` too). So is a tag ``keep_regex`` matches (whole tag).
2. When ``delete_regex`` is given, only the tags it matches (whole tag) are candidates;
   the others are kept. With no rule at all (no ``keep_last``, ``older_than`` or
   ``delete_regex``) nothing is deleted.
3. Age rules (``keep_last``, ``older_than``) never delete a tag whose creation time is
   unknown (NaT) or before 1980 (reproducible builds say 1970-01-01): its age is unknown,
   so it is kept. Without age rules, ``delete_regex`` alone deletes what it matches.
4. ``keep_last=N`` keeps, per repository, the candidates pointing to the N newest
   **distinct digests** (by ``created_at``; several tags on one digest count once), so
   re-tagging a build does not push older builds out.
5. ``older_than`` (``"90d"``, ``"12h"``, ``"2w"``, a timedelta) keeps candidates created
   at or after ``now - older_than``. With both age rules, a candidate is deleted only when
   both say so.
6. A digest that any kept tag of the repository points to is never deleted: its other
   tags are kept too (reason ``"digest shared with kept tag X"``). Deleting a manifest
   deletes every tag on it, so this is what keeps kept tags alive.
7. Accessories (``subject`` set: cosign/notation ``sha256-<hex>.sig``/``.att``/``.sbom``
   tags, referrers fallback tags, manifests with a ``subject``) are not ranked and not
   aged on their own (only ``protect`` and ``keep_regex`` apply to them): one is deleted
   exactly when every tag of the repository on its subject (as a tag's digest or as one of
   its platform manifests) is deleted, and kept otherwise, or when no tag holds it.
8. A tag that could be read only in part (``complete`` False) is kept: retention never
   plans from rows it could not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

import pandas as pd
import regex

from ..errors import InvalidValue
from ..frames.schema import EARLIEST_KNOWN, PLAN_SCHEMA, UTC_NS, coerce, empty, tag_rows, utc

KEEP = "keep"
DELETE = "delete"
#: Tags every plan protects unless ``protect_defaults=False``: ``protect`` adds to these.
DEFAULT_PROTECTED: tuple[str, ...] = ("latest",)
#: The longest age :func:`parse_age` accepts: no image is a century old, and ``now - age``
#: must stay a time pandas can hold.
MAX_AGE = pd.Timedelta(days=36500)
#: Seconds one full match of a caller's tag pattern against one tag may take: patterns such as
#: ``(a|a)+$`` backtrack for hours on a 41-character tag; the match is cut off and refused.
REGEX_TIMEOUT = 1.0

_AGE = re.compile(r"^\s*(\d+)\s*(s|sec|secs|min|mins|h|hours?|d|days?|w|weeks?)\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "sec": 1, "secs": 1, "min": 60, "mins": 60, "h": 3600, "hour": 3600,
                 "hours": 3600, "d": 86400, "day": 86400, "days": 86400, "w": 604800,
                 "week": 604800, "weeks": 604800}


def parse_age(value) -> pd.Timedelta:
    """``"90d"``, ``"12h"``, ``"2w"``, ``"30min"`` (or a timedelta) as a :class:`pandas.Timedelta`.

    Raises
    ------
    InvalidValue
        A ``ValueError``, for anything else (months and years are refused: their length
        varies), a negative age, or one longer than :data:`MAX_AGE` (100 years).
    """
    too_long = InvalidValue(f"age {value!r} is too long: at most {MAX_AGE.days}d (100 years)")
    if isinstance(value, (timedelta, pd.Timedelta)):
        try:
            age = pd.Timedelta(value)
        except (ValueError, OverflowError):
            raise too_long from None
        if pd.isna(age):
            raise InvalidValue(f"age {value!r} is not a duration")
    else:
        match = _AGE.match(str(value)) if isinstance(value, str) else None
        if match is None:
            raise InvalidValue(
                f"age {value!r} is not a duration: write a number and a unit, e.g. '90d', "
                "'12h', '2w' or '30min' (months and years are not fixed lengths)"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if seconds > MAX_AGE.total_seconds():
            raise too_long
        age = pd.Timedelta(seconds=seconds)
    if age < pd.Timedelta(0):
        raise InvalidValue(f"age {value!r} is negative")
    if age > MAX_AGE:
        raise too_long
    return age


class TagPattern:
    """A caller's regular expression on tag names, matched whole and with a time limit.

    Matched by the ``regex`` package (Python ``re`` syntax) with ``timeout=``:
    :data:`REGEX_TIMEOUT` seconds per tag, so a pattern that backtracks catastrophically ends
    in a clear error instead of a hang. ``pattern`` is the text given.

    Raises
    ------
    InvalidValue
        A ``ValueError``: at construction when the text is not a regular expression; from
        :meth:`fullmatch` when one match takes longer than the limit.
    """

    def __init__(self, value: str | re.Pattern | regex.Pattern, name: str = "pattern"):
        self.name = name
        flags = 0
        if isinstance(value, re.Pattern):  # the flags both engines share, by name
            flags = sum(int(getattr(regex, f.name)) for f in re.RegexFlag
                        if f & value.flags and f.name in ("IGNORECASE", "MULTILINE", "DOTALL",
                                                          "VERBOSE", "ASCII"))
            value = value.pattern
        self.pattern = value.pattern if isinstance(value, regex.Pattern) else value
        try:
            self._compiled = (value if isinstance(value, regex.Pattern)
                              else regex.compile(value, flags))
        except (regex.error, TypeError) as exc:
            raise InvalidValue(f"{name} {value!r} is not a regular expression: {exc}") from None

    def fullmatch(self, tag: str) -> bool:
        """True when the pattern matches the whole of ``tag``."""
        return self._match("fullmatch", tag)

    def search(self, tag: str) -> bool:
        """True when the pattern matches anywhere in ``tag`` (a filter, not a rule)."""
        return self._match("search", tag)

    def _match(self, how: str, tag: str) -> bool:
        try:
            return getattr(self._compiled, how)(tag, timeout=REGEX_TIMEOUT) is not None
        except TimeoutError:
            raise InvalidValue(
                f"{self.name} {self.pattern!r} took more than {REGEX_TIMEOUT:g} s on tag "
                f"{tag!r} (catastrophic backtracking): rewrite it without nested or "
                "overlapping repetition such as '(a+)+' or '(a|a)*'"
            ) from None

    def __repr__(self) -> str:
        return f"TagPattern({self.pattern!r})"


def _pattern(value, name: str) -> TagPattern | None:
    return None if value is None else TagPattern(value, name)


def _cutoff(now, age: pd.Timedelta) -> pd.Timestamp:
    """``now - age``; times before the first nanosecond time mean "nothing is older"."""
    try:
        return utc(now, "now") - age
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        return pd.Timestamp.min.tz_localize("UTC").ceil("s")


def collapse_platforms(tags: pd.DataFrame) -> pd.DataFrame:
    """The tags frame with one row per (repository, tag): the image rows' platforms joined,
    ``created_at`` the newest, ``layer_size`` summed (attestation rows are left out; a tag
    without image rows, an artifact, stands by its own rows)."""
    frame = tag_rows(tags)
    if not len(frame):
        return empty(PLAN_SCHEMA).drop(columns=["rank", "action", "reason"])
    frame = frame.copy()
    for column in ("registry", "media_type", "platform", "layer_size", "subject"):
        if column not in frame.columns:
            frame[column] = pd.NA
    if "complete" not in frame.columns:
        frame["complete"] = True
    frame["created_at"] = coerce(frame[["created_at"]], {"created_at": UTC_NS})["created_at"]\
        .to_numpy()
    grouped = frame.groupby(["repository", "tag"], sort=True, dropna=False)
    out = grouped.agg(
        registry=("registry", "first"),
        digest=("digest", "first"),
        media_type=("media_type", "first"),
        platforms=("platform", lambda s: ",".join(sorted({str(p) for p in s.dropna()}))),
        created_at=("created_at", "max"),
        layer_size=("layer_size", lambda s: s.sum(min_count=1)),
        subject=("subject", "first"),
        complete=("complete", lambda s: bool(s.fillna(True).all())),
    ).reset_index()
    return coerce(out, {k: v for k, v in PLAN_SCHEMA.items()
                        if k not in ("rank", "action", "reason")})


def retention_plan(tags: pd.DataFrame, keep_last: int | None = None, older_than=None,
                   keep_regex=None, delete_regex=None, protect: Iterable[str] | str = (),
                   now=None, protect_defaults: bool = True) -> pd.DataFrame:
    """Decide, per (repository, tag), whether a cleanup keeps or deletes it, and say why, by
    the rules of the module docstring (GitLab cleanup policies; Harbor's digest care).

    Parameters
    ----------
    tags : DataFrame
        The tags frame (:data:`~registry_insights.schema.TAGS_SCHEMA`; attestation rows are
        ignored). Platforms are collapsed: one row per (repository, tag).
    keep_last : int, optional
        Distinct digests to keep per repository among the candidates.
    older_than : str or timedelta, optional
        Delete only candidates created before ``now - older_than``.
    keep_regex, delete_regex : str or compiled pattern, optional
        Full-match patterns on the tag name (:class:`TagPattern`: matched with a time limit).
    protect : iterable of str
        Tag names always kept, in addition to :data:`DEFAULT_PROTECTED` (``latest``).
    now : timestamp, optional
        "Now" for ``older_than`` (default: the current time, UTC); naive times are UTC.
    protect_defaults : bool, default True
        False protects only the tags in ``protect`` (``latest`` too may then be deleted).

    Returns
    -------
    DataFrame
        :data:`PLAN_SCHEMA`, sorted by repository, newest first: the collapsed tags with
        ``rank``, ``action`` (``keep``/``delete``) and ``reason``.

    Raises
    ------
    ValueError
        A negative ``keep_last``; ``InvalidValue``: a malformed or out-of-range ``older_than``
        or ``now``, a bad regular expression or one slower than :data:`REGEX_TIMEOUT` s a tag.
    """
    _check_keep_last(keep_last)
    age = parse_age(older_than) if older_than is not None else None
    age_text = older_than if isinstance(older_than, str) else str(age)
    keep_re, delete_re = _pattern(keep_regex, "keep_regex"), _pattern(delete_regex,
                                                                       "delete_regex")
    protected = _protected(protect, protect_defaults)
    cutoff = None if age is None else _cutoff(now, age)
    age_rules = keep_last is not None or age is not None
    any_rule = age_rules or delete_re is not None
    if not len(plan := collapse_platforms(tags)):
        return empty(PLAN_SCHEMA)
    n = len(plan)
    action: list[str | None] = [None] * n
    reason, rank = list(action), list(action)
    repos, names, digests, created, known, subjects, complete = _columns(plan)
    candidates, accessories = [], []
    for i in range(n):
        kept = _kept_by_name(names[i], protected, keep_re) or (
            None if complete[i] else "could not be read completely: never planned")
        if not kept and subjects[i] is not None:
            accessories.append(i)
            continue
        kept = kept or _not_a_candidate(names[i], delete_re, any_rule, age_rules, created[i],
                                        known[i])
        if kept:
            action[i], reason[i] = KEEP, kept
        else:
            candidates.append(i)

    if keep_last is not None:
        _rank_digests(candidates, repos, digests, created, rank)
    for i in candidates:
        action[i], reason[i] = _decide(rank[i], created[i], keep_last, cutoff, age_text,
                                       delete_re)

    _keep_shared_digests(action, reason, repos, names, digests)
    if accessories:
        _follow_subjects(tags, accessories, action, reason, repos, names, digests, subjects)
        _keep_shared_digests(action, reason, repos, names, digests)

    out = plan.assign(rank=pd.array(rank, dtype="Int64"), action=action, reason=reason)
    return coerce(out.sort_values(["repository", "created_at", "tag"],
                                  ascending=[True, False, True], na_position="last",
                                  kind="stable"), PLAN_SCHEMA)


def _check_keep_last(keep_last) -> None:
    if keep_last is not None and (int(keep_last) != keep_last or keep_last < 0):
        raise ValueError(f"keep_last must be a whole number >= 0, not {keep_last!r}")


def _protected(protect, protect_defaults: bool) -> set[str]:
    """Rule 1's names: ``protect`` added to :data:`DEFAULT_PROTECTED` (unless asked not)."""
    protected = {protect} if isinstance(protect, str) else set(protect or ())
    protected.discard("")
    return protected | set(DEFAULT_PROTECTED) if protect_defaults else protected


def _columns(plan: pd.DataFrame) -> tuple[list, ...]:
    """The plan's columns as lists: repositories, tags, digests, creation times, whether the
    time is known, subjects (accessories), whether the tag was read completely."""
    created = list(plan["created_at"])
    return (plan["repository"].astype(str).tolist(), plan["tag"].astype(str).tolist(),
            plan["digest"].astype(object).where(plan["digest"].notna(), None).tolist(),
            created, [not pd.isna(c) and c >= EARLIEST_KNOWN for c in created],
            [None if pd.isna(v) else str(v) for v in plan["subject"]],
            plan["complete"].fillna(True).astype(bool).tolist())


def _kept_by_name(tag: str, protected: set, keep_re) -> str | None:
    """Rule 1: protected tags and tags ``keep_regex`` matches."""
    if tag in protected:
        return "protected tag"
    if keep_re is not None and keep_re.fullmatch(tag):
        return f"matches keep_regex {keep_re.pattern!r}"
    return None


def _not_a_candidate(tag: str, delete_re, any_rule: bool, age_rules: bool, created,
                     known: bool) -> str | None:
    """Rules 2 and 3: why a tag that is neither protected nor an accessory is kept without
    being ranked, or None (a candidate)."""
    if delete_re is not None and not delete_re.fullmatch(tag):
        return f"does not match delete_regex {delete_re.pattern!r}"
    if not any_rule:
        return "no deletion rule given"
    if age_rules and not known:
        when = "unknown" if pd.isna(created) else f"{created:%Y-%m-%d} (before 1980)"
        return f"created {when}: age rules never delete it"
    return None


def _rank_digests(candidates: list[int], repos: list, digests: list, created: list,
                  rank: list) -> None:
    """Rule 4: per repository, 1 for the candidates on the newest distinct digest, 2 for the
    next ... (several tags on one digest count once); written into ``rank``."""
    newest: dict[tuple[str, str | None], pd.Timestamp] = {}
    for i in candidates:
        key = (repos[i], digests[i])
        newest[key] = max(newest.get(key, created[i]), created[i])
    order = sorted(newest, key=lambda k: (k[0], -newest[k].value, str(k[1])))
    ranks: dict[tuple[str, str | None], int] = {}
    counts: dict[str, int] = {}
    for key in order:
        counts[key[0]] = counts.get(key[0], 0) + 1
        ranks[key] = counts[key[0]]
    for i in candidates:
        rank[i] = ranks[(repos[i], digests[i])]


def _decide(rank, created, keep_last, cutoff, age_text: str, delete_re) -> tuple[str, str]:
    """Rules 4 and 5 for one candidate: ``(action, reason)``; deleted only when every rule
    given says so."""
    parts = []
    if keep_last is not None:
        if rank <= keep_last:
            return KEEP, f"digest #{rank} of the {keep_last} newest (keep_last)"
        parts.append(f"digest #{rank}, beyond keep_last {keep_last}")
    if cutoff is not None:
        if created >= cutoff:
            return KEEP, f"created {created:%Y-%m-%d}, newer than {age_text}"
        parts.append(f"created {created:%Y-%m-%d}, older than {age_text}")
    if delete_re is not None:
        parts.append(f"matches delete_regex {delete_re.pattern!r}")
    return DELETE, "; ".join(parts)


def _keep_shared_digests(action, reason, repos, names, digests) -> None:
    """Rule 6: a digest any kept tag points to is not deleted (its other tags are kept)."""
    kept_by: dict[tuple[str, str], str] = {}
    for i in range(len(action)):
        if action[i] == KEEP and digests[i] is not None:
            kept_by.setdefault((repos[i], digests[i]), names[i])
    for i in range(len(action)):
        holder = kept_by.get((repos[i], digests[i])) if digests[i] is not None else None
        if action[i] == DELETE and holder is not None:
            action[i], reason[i] = KEEP, f"digest shared with kept tag {holder}"


def _follow_subjects(tags, accessories, action, reason, repos, names, digests,
                     subjects) -> None:
    """Rule 7: each accessory takes the fate of the tags holding its subject (its digest,
    or one of their platform manifests); accessories of accessories follow in turn."""
    holders: dict[tuple[str, str], set[int]] = {}
    row_of = {(r, t): i for i, (r, t) in enumerate(zip(repos, names))}
    for i, digest in enumerate(digests):
        if digest is not None:
            holders.setdefault((repos[i], digest), set()).add(i)
    if "manifest_digest" in tags.columns and len(tags):
        for repo, tag, kid in zip(tags["repository"], tags["tag"], tags["manifest_digest"]):
            i = row_of.get((str(repo), str(tag)))
            if i is not None and not pd.isna(kid):
                holders.setdefault((repos[i], str(kid)), set()).add(i)
    pending = list(accessories)
    for _round in range(len(pending) + 1):
        waiting = []
        for i in pending:
            held = sorted(h for h in holders.get((repos[i], subjects[i]), ()) if h != i)
            if any(action[h] is None for h in held):
                waiting.append(i)  # its subject is itself an accessory not yet decided
                continue
            short = subjects[i][:19]
            if not held:
                action[i], reason[i] = KEEP, (f"accessory of {short}, which no tag here "
                                              "holds: left alone")
            elif all(action[h] == DELETE for h in held):
                action[i], reason[i] = DELETE, (f"accessory of {short}, deleted with tag "
                                                f"{names[held[0]]}")
            else:
                keeper = next(names[h] for h in held if action[h] == KEEP)
                action[i], reason[i] = KEEP, f"accessory of {short}, kept with tag {keeper}"
        if len(waiting) == len(pending):
            for i in waiting:  # accessories of each other: nothing decides them
                action[i], reason[i] = KEEP, f"accessory of {subjects[i][:19]}: left alone"
            break
        pending = waiting
        if not pending:
            break


def deletions(plan: pd.DataFrame) -> list[tuple[str, str, str | None]]:
    """``(repository, tag, digest)`` of every row the plan deletes, for
    :meth:`RegistryClient.delete_many <registry_insights.client.RegistryClient.delete_many>`
    (which leaves a tag alone if it no longer points to that digest)."""
    rows = plan[plan["action"] == DELETE]
    return [(str(r), str(t), None if pd.isna(d) else str(d))
            for r, t, d in zip(rows["repository"], rows["tag"], rows["digest"])]

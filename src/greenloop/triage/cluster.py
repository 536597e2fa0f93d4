"""Clusters: failures sharing one fingerprint are one problem.

Blocked tests cluster by the component that blocked them, environment skips
by their reason, everything else by the failure fingerprint. Clusters are
ranked by money at risk, then by how many tests they hold.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from greenloop.probes.modes import WORDS as MODE_WORDS
from greenloop.records import Category, Cluster, GateResult, IndexEntry, RootCause
from greenloop.redact import Redactor
from greenloop.triage.classify import Decision
from greenloop.triage.evidence import product_component
from greenloop.triage.fingerprint import (
    blocked_fingerprint,
    cluster_id,
    digest,
    environment_fingerprint,
    fingerprint_evidence,
    random_id_shapes,
    request_signature,
    server_signature,
    signature,
    skipped_fingerprint,
)
from greenloop.triage.impact import impact_usd
from greenloop.triage.logs.base import LogRecord
from greenloop.triage.names import PHRASES, component_reason, phrase
from greenloop.triage.rootcause import ChangeFacts, build_root_cause

_REDACT = Redactor()


_ENVIRONMENT = (Category.INFRASTRUCTURE, Category.CONFIGURATION)
_PRODUCT = (Category.PRODUCT, Category.UNKNOWN)
_NOT_TEXT = (*_ENVIRONMENT, Category.BLOCKED, Category.SKIPPED_ENV)


def cluster_key(decision: Decision, text_key: str | None = None) -> str | None:
    """The fingerprint a decision clusters under; None for deliberate skips (no problem).

    Environment faults cluster by reason and component (the same rejected token seen from
    a WebSocket handshake and from an assertion is one problem). Product failures cluster
    on the service's own error when its log shows one for the request, else on the
    request and status the failure names, else on the failure text. `text_key` is that
    text fingerprint when the caller computed it already (it is the costly part).
    """
    c = decision.classification
    if c.category is Category.BLOCKED:
        ev = decision.evidence
        return blocked_fingerprint(c.component or "environment", ev.blocked_root, ev.blocked_mode)
    if c.category is Category.SKIPPED_ENV:
        return skipped_fingerprint(c.evidence)
    if decision.reason == "SKIPPED":
        return None
    if c.category in _ENVIRONMENT:
        return environment_fingerprint(c.category, decision.reason, c.component)
    if c.category in _PRODUCT:
        server = decision.evidence.server_error
        if server is not None:
            return digest(f"server|{server_signature(server)}")
        request = request_signature(decision.evidence)
        if request is not None:
            return digest(f"request|{request}")
    return text_key or fingerprint_evidence(decision.evidence, c.category)


def record_keys(decision: Decision) -> tuple[str | None, str | None]:
    """One decision's (text signature, own key): the per-record part of `cluster_keys`.
    The text signature (readable, not hashed yet) is set for the failures that may key on
    their text (not environment faults, blocks or skips): it is what `shared_keys` unites."""
    category = decision.classification.category
    keyed_elsewhere = category in _NOT_TEXT or decision.reason == "SKIPPED"
    text = None if keyed_elsewhere else signature(decision.evidence, category)
    return text, cluster_key(decision, digest(text) if text is not None else None)


def shared_keys(pairs: Sequence[tuple[str | None, str | None]]) -> list[str | None]:
    """The keys of `record_keys` pairs after the steps that look across records:

    - a product failure whose text is identical to one the service's log explains shares
      its key (a module fixture's cached error, re-raised for every test of the module,
      matches the log only once);
    - failures keyed on their text whose statements differ only in a random id no mask
      recognised (`random_id_shapes`) share one key.
    """
    adopted: dict[str, str] = {}
    own: Counter[str] = Counter()  # signatures keyed on their own text, with their counts
    for text, key in pairs:
        if text is None or key is None:
            continue
        if key != digest(text):
            adopted.setdefault(text, key)
        else:
            own[text] += 1
    for text in adopted:
        own.pop(text, None)
    shapes = random_id_shapes(own)
    out: list[str | None] = []
    for text, key in pairs:
        if text is None or key is None:
            out.append(key)
        elif text in adopted:
            out.append(adopted[text])
        elif text in shapes:
            out.append(digest(shapes[text]))
        else:
            out.append(key)
    return out


def cluster_keys(decisions: Sequence[Decision]) -> list[str | None]:
    """Each decision's key (`record_keys`, then `shared_keys`)."""
    return shared_keys([record_keys(d) for d in decisions])


# Categories whose cluster names the component the index gives the failing files, when the
# failure text and the probes name none (a refused connection to a host no probe watches).
_INDEXED = (*_ENVIRONMENT, *_PRODUCT)


def index_component(members: Sequence[Decision]) -> str | None:
    """The one component the index lists for every member's test file; None when the files
    name none, several, or different ones."""
    found = {m.evidence.test_components for m in members}
    if len(found) == 1:
        (components,) = found
        if len(components) == 1:
            return components[0]
    return None


def _most_common(values: Sequence[str | None]) -> str | None:
    present = [v for v in values if v]
    return Counter(present).most_common(1)[0][0] if present else None


# Infrastructure abbreviations written in capitals when they name a component.
ACRONYMS = frozenset(
    {"api", "cdn", "db", "dns", "http", "https", "idp", "jwt", "lb", "mq", "s3", "smtp",
     "sql", "ssl", "sso", "tcp", "tls", "ui", "vpn", "ws"}
)  # fmt: skip


def component_words(name: str) -> str:
    """A component name as words of a sentence: load_balancer -> Load balancer, tls -> TLS."""
    words = [w for w in name.replace("_", " ").replace("-", " ").split(" ") if w]
    shown = [w.upper() if w.lower() in ACRONYMS else w.lower() for w in words]
    if shown and shown[0].islower():
        shown[0] = shown[0].capitalize()
    return " ".join(shown)


def title(
    category: Category,
    reason: str,
    component: str | None,
    count: int,
    cause: RootCause | None = None,
) -> str:
    """A sentence a person reads first: 'Cache unhealthy: 12 tests blocked', or with the
    blocking failure's mode and category, 'Cache unhealthy (credentials rejected,
    configuration): 12 tests blocked'."""
    tests = f"{count} test{'s' if count != 1 else ''}"
    name = component_words(component or "")
    if category is Category.BLOCKED:
        how = ""
        if cause is not None and cause.mode is not None and cause.category is not None:
            deeper = (
                f"{cause.component}: " if cause.component and cause.component != component else ""
            )
            how = f" ({deeper}{MODE_WORDS[cause.mode]}, {cause.category.value})"
        return f"{name or 'Environment'} unhealthy{how}: {tests} blocked"
    if category is Category.SKIPPED_ENV:
        return f"Environment unavailable: {tests} skipped"
    if reason.endswith("-UNAVAILABLE") and name:
        return f"{name} unreachable: {tests} failed"
    where = f" ({component})" if component else ""
    return f"{phrase(reason)}{where}: {tests} failed"


def build_clusters(
    decisions: Sequence[Decision],
    *,
    index: Sequence[IndexEntry] = (),
    gate: GateResult | None = None,
    logs: Sequence[LogRecord] = (),
    change: ChangeFacts = ChangeFacts(),
    keys: Sequence[str | None] | None = None,
) -> tuple[Cluster, ...]:
    """Group decisions by key and explain and price each group. `keys` are the decisions'
    `cluster_keys` when the caller computed them already (in worker processes)."""
    groups: dict[str, list[Decision]] = {}
    if keys is None:
        keys = cluster_keys(decisions)
    for decision, key in zip(decisions, keys, strict=True):
        if key is not None:
            groups.setdefault(key, []).append(decision)
    clusters = []
    for fp, members in groups.items():
        categories = Counter(m.classification.category for m in members)
        category = categories.most_common(1)[0][0]
        component = _most_common([m.classification.component for m in members])
        if component is None and category in _PRODUCT:
            component = _most_common([product_component(m.evidence) for m in members])
        if component is None and category in _INDEXED:
            component = index_component(members)
        base_reason = _most_common([m.reason for m in members]) or "INSUFFICIENT-EVIDENCE"
        reason = component_reason(base_reason, component)
        tests = tuple(dict.fromkeys(m.classification.nodeid for m in members))
        confidence = sum(m.classification.confidence for m in members) / len(members)
        cause = build_root_cause(
            members,
            category=category,
            # The specific reason reads better when it has its own phrase.
            reason=reason if reason in PHRASES else base_reason,
            component=component,
            gate=gate,
            logs=logs,
            change=change,
        )
        if category is Category.BLOCKED and cause.mode is not None:
            # BLOCKED-BY-CACHE-CREDENTIALS: an issue title tells look-alikes apart too.
            reason = f"{reason}-{cause.mode.value.upper().replace('_', '-')}"
        clusters.append(
            Cluster(
                id=cluster_id(fp),
                fingerprint=fp,
                category=category,
                confidence=round(confidence, 2),
                tests=tests,
                title=title(category, reason, component, len(tests), cause),
                reason=reason,
                root_cause=cause,
                impact_usd=impact_usd(tests, index),
                excerpt=_REDACT.redact(members[0].classification.evidence)[:400],
            )
        )
    return rank(clusters)


def rank(clusters: Sequence[Cluster]) -> tuple[Cluster, ...]:
    """Most money at risk first, then most tests, then a stable order."""
    return tuple(sorted(clusters, key=lambda c: (-c.impact_usd, -c.count, c.id)))

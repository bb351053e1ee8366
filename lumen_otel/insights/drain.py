"""Drain: online log template mining with a fixed-depth prefix tree (He et al., ICWS 2017).

A log message is masked (obvious variables such as numbers, UUIDs, IPs, hex ids and lumen's
``[REDACTED:KIND]`` / ``kind:<hex>`` pseudonyms become named parameters like ``<NUM>``), split
on whitespace, then routed down a tree:

* under the root, the *group* (lumen mines each service and level apart) and the number of
  tokens;
* then the first ``depth - 3`` tokens (one with the default depth 4, as in Drain3 and
  logparser, whose ``depth`` counts the root, the length layer, the token layers and the
  leaf); a token holding a digit or a parameter goes down the ``<*>`` branch, and a node with
  ``max_children`` children sends any further token there too, so the tree stays small
  whatever the logs hold;
* the leaf: a short list of clusters (templates). The message joins the most similar one
  (share of positions where the template's token equals the message's, ``<*>`` not
  counting; ties go to the template with more parameters) when that share reaches
  ``sim_threshold``, and every position where they differ becomes ``<*>``. Otherwise the
  message starts a new cluster.

Memory is bounded by templates, not lines: at most ``max_clusters`` clusters are kept (the
least recently matched is evicted, and reported through ``on_evict``), and a bounded cache maps
a masked message seen before straight to its cluster, which skips the tree for the repeated
lines that make up most of a busy log.

This is a small reimplementation rather than a dependency on ``drain3`` (last release 0.9.11
in July 2022, with pinned ``cachetools``/``jsonpickle`` and persistence layers we do not need).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence

__all__ = ["WILDCARD", "Cluster", "Drain", "is_parameter", "mask", "tokenize"]

WILDCARD = "<*>"

#: a message is cut to this many tokens before mining (a 5,000-token dump is one template anyway)
MAX_TOKENS = 80
#: characters of a message looked at when masking and tokenising
MAX_CHARS = 4000

# Masking, in this order (a UUID holds hex digits and numbers; an IP holds numbers).
#: lumen's fixed redaction tokens: ``[REDACTED:MRN]`` -> ``<MRN>``
_REDACTED = re.compile(r"\[REDACTED:([A-Z0-9_]+)\]")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
#: lumen's keyed pseudonyms: ``mrn:1a2b3c4d5e6f`` -> ``<MRN>`` (the template of the fixed mask)
_PSEUDONYM = re.compile(r"(?<![\w:])([a-z][a-z0-9_]*):[0-9a-f]{12}(?![\w:])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
#: 0x-prefixed hex; words of 8+ lower-case hex digits with a letter (trace and span ids, even
#: those that happen to hold no digit); upper-case ones holding a digit and a letter
_HEX = re.compile(
    r"\b0[xX][0-9a-fA-F]+\b"
    r"|\b(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b"
    r"|\b(?=[0-9A-F]*[A-F])(?=[0-9A-F]*[0-9])[0-9A-F]{8,}\b"
)
#: numbers not glued to letters, with a unit kept: 42, -7, 0.93, 1.2.840.113619, 795ms, 12%, 5KB
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_])[-+]?\d+(?:[.,]\d+)*(?=(?:ms|us|µs|ns|s|m|h|d|[KMGT]i?B|B)?(?![A-Za-z0-9_]))"
)
_HAS_DIGIT = re.compile(r"\d")


def _pseudonym_kind(match: re.Match[str]) -> str:
    return f"<{match.group(1).upper()}>"


def _redacted_kind(match: re.Match[str]) -> str:
    return f"<{match.group(1)}>"


def mask(message: str) -> str:
    """``message`` with obvious variables replaced by named parameters (``<NUM>``, ``<UUID>``...).

    >>> mask("GET /exams/42 from 10.0.0.7 took 12ms for [REDACTED:MRN]")
    'GET /exams/<NUM> from <IP> took <NUM>ms for <MRN>'
    """
    text = message[:MAX_CHARS]
    if "[REDACTED:" in text:
        text = _REDACTED.sub(_redacted_kind, text)
    if _HAS_DIGIT.search(text) is None:  # no number, IP or pseudonym: only a letters-only hex id
        return _HEX.sub("<HEX>", text)
    text = _UUID.sub("<UUID>", text)
    if ":" in text:
        text = _PSEUDONYM.sub(_pseudonym_kind, text)
    text = _IPV4.sub("<IP>", text)
    text = _HEX.sub("<HEX>", text)
    return _NUMBER.sub("<NUM>", text)


def tokenize(masked: str) -> tuple[str, ...]:
    """Whitespace tokens of a masked message, at most :data:`MAX_TOKENS`."""
    tokens = masked.split()
    if len(tokens) > MAX_TOKENS:
        del tokens[MAX_TOKENS:]
    return tuple(tokens)


def is_parameter(token: str) -> bool:
    """``<*>`` or a named mask such as ``<NUM>`` (a whole token in angle brackets)."""
    return len(token) > 2 and token[0] == "<" and token[-1] == ">" and " " not in token


class Cluster:
    """One template: its tokens (``<*>`` where lines differ) and how many lines joined it."""

    __slots__ = ("alive", "group", "id", "size", "tokens")

    def __init__(self, cluster_id: int, group: str, tokens: tuple[str, ...]) -> None:
        self.id = cluster_id
        self.group = group
        self.tokens = tokens
        self.size = 0
        self.alive = True

    @property
    def template(self) -> str:
        return " ".join(self.tokens)

    def __repr__(self) -> str:
        return f"Cluster({self.id}, {self.group!r}, size={self.size}, {self.template!r})"


class _Node:
    __slots__ = ("children", "clusters")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.clusters: list[Cluster] = []


class Drain:
    """The Drain parse tree. ``add`` returns the cluster a message joined (or started).

    Args:
        depth: depth of the leaves, counting the root, the length layer and the leaf (4, the
            usual value: one prefix token; 3: none).
        sim_threshold: least share of equal tokens for a message to join a template.
        max_children: children of an inner node before further tokens go down ``<*>``.
        max_clusters: templates kept; the least recently matched one is evicted beyond it.
        cache_size: masked messages remembered with their cluster (cleared when full).
        on_evict: called with each evicted cluster (to fold its counts somewhere).
    """

    def __init__(
        self,
        *,
        depth: int = 4,
        sim_threshold: float = 0.4,
        max_children: int = 100,
        max_clusters: int = 5000,
        cache_size: int = 50_000,
        on_evict: Callable[[Cluster], None] | None = None,
    ) -> None:
        if depth < 3:
            raise ValueError("depth must be at least 3 (root, length layer, leaf)")
        if not 0.0 <= sim_threshold <= 1.0:
            raise ValueError("sim_threshold must be between 0 and 1")
        if max_children < 2 or max_clusters < 1:
            raise ValueError("max_children must be at least 2 and max_clusters at least 1")
        self.prefix_depth = depth - 3
        self.sim_threshold = sim_threshold
        self.max_children = max_children
        self.max_clusters = max_clusters
        self.cache_size = cache_size
        self.on_evict = on_evict
        self._roots: dict[tuple[str, int], _Node] = {}
        self._clusters: OrderedDict[int, Cluster] = OrderedDict()  # least recently matched first
        self._cache: dict[tuple[str, str], Cluster] = {}
        self._next_id = 1
        self.evicted = 0

    # ------------------------------------------------------------------ public

    @property
    def clusters(self) -> list[Cluster]:
        return list(self._clusters.values())

    def __len__(self) -> int:
        return len(self._clusters)

    def add_message(self, message: str, group: str = "") -> Cluster:
        """Mask, tokenise and add one message; repeated masked messages skip the tree."""
        masked = mask(message)
        key = (group, masked)
        cluster = self._cache.get(key)
        if cluster is not None and cluster.alive:
            cluster.size += 1
            self._clusters.move_to_end(cluster.id)
            return cluster
        cluster = self.add(tokenize(masked), group)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = cluster
        return cluster

    def add(self, tokens: Sequence[str], group: str = "") -> Cluster:
        """Add one tokenised (already masked) message."""
        tokens = tuple(tokens)
        cluster = self.match(tokens, group)
        if cluster is None:  # a new template, on the path of its own tokens
            leaf = self._leaf(group, tokens, create=True)
            assert leaf is not None
            cluster = self._new_cluster(leaf, group, tokens)
        elif cluster.tokens != tokens:
            merged = tuple(t if t == m else WILDCARD for t, m in zip(cluster.tokens, tokens, strict=True))
            if merged != cluster.tokens:
                cluster.tokens = merged
        cluster.size += 1
        self._clusters.move_to_end(cluster.id)
        return cluster

    def match(self, tokens: Sequence[str], group: str = "") -> Cluster | None:
        """The cluster ``tokens`` would join, without adding them."""
        tokens = tuple(tokens)
        leaf = self._leaf(group, tokens, create=False)
        return None if leaf is None else self._best_match(leaf, tokens)

    # ------------------------------------------------------------------ the tree

    def _leaf(self, group: str, tokens: tuple[str, ...], create: bool) -> _Node | None:
        """Follow (group, length) then the first tokens; creates the path when asked."""
        key = (group, len(tokens))
        node = self._roots.get(key)
        if node is None:
            if not create:
                return None
            node = self._roots[key] = _Node()
        for token in tokens[: min(self.prefix_depth, len(tokens) - 1)]:  # never the last token
            children = node.children
            child = children.get(token)
            if child is None:
                child = children.get(WILDCARD)
                if not create:  # searching: an unknown token may match under <*>
                    if child is None:
                        return None
                elif _HAS_DIGIT.search(token) is not None or is_parameter(token):
                    if child is None:
                        child = children[WILDCARD] = _Node()
                elif len(children) + (WILDCARD not in children) < self.max_children:
                    child = children[token] = _Node()
                elif child is None:  # the last free place is kept for <*>
                    child = children[WILDCARD] = _Node()
            node = child
        return node

    def _best_match(self, leaf: _Node, tokens: tuple[str, ...]) -> Cluster | None:
        best: Cluster | None = None
        best_sim = -1.0
        best_params = -1
        n = len(tokens) or 1
        for cluster in leaf.clusters:
            if not cluster.alive:
                continue
            same = params = 0
            for t, m in zip(cluster.tokens, tokens, strict=True):
                if t == WILDCARD:
                    params += 1
                elif t == m:
                    same += 1
            sim = same / n
            if sim > best_sim or (sim == best_sim and params > best_params):
                best, best_sim, best_params = cluster, sim, params
        if best is not None and (best_sim >= self.sim_threshold or not tokens):
            return best
        return None

    def _new_cluster(self, leaf: _Node, group: str, tokens: tuple[str, ...]) -> Cluster:
        if len(self._clusters) >= self.max_clusters:
            self._evict()
        cluster = Cluster(self._next_id, group, tokens)
        self._next_id += 1
        self._clusters[cluster.id] = cluster
        if self.evicted:
            leaf.clusters = [c for c in leaf.clusters if c.alive]
        leaf.clusters.append(cluster)
        return cluster

    def _evict(self) -> None:
        _, victim = self._clusters.popitem(last=False)
        victim.alive = False
        self.evicted += 1
        if self.on_evict is not None:
            self.on_evict(victim)

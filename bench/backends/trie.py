"""Plan prefix-shared scoring over a full token trie of each item's candidates.

Every candidate is tokenized in full. A candidate's fed tokens are all but its last; each fed token
predicts the next one. The candidates' fed sequences form a trie, cut into nodes: a node feeds a run
of tokens that all its candidates share, on top of the KV cache of its ancestors, and ends where its
candidates part ways (or one of them ends). So every distinct token prefix of an item is pushed
through the model exactly once: the tokens pushed equal the item's distinct-prefix count.

Nodes run level by level (all roots of a group of items, then all their children, ...). The
siblings of one parent are packed into one row behind a single copy of the parent's KV, each
seeing only its ancestors and itself (a tree attention mask), so an item with 119 labels costs one
row, not 119 copies of its context. Rows are batched to a token budget. Pure Python, so it is cheap
to test.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(eq=False)
class Node:
    """A run of tokens fed once for the candidates `members` of item `item`."""

    item: int
    start: int  # position of its first token in the sequence
    tokens: list[int]
    members: list[int]  # candidate indices that pass through this node
    picks: list[tuple[int, int, list[int]]] = field(default_factory=list)
    """(offset in `tokens`, the token it predicts, the candidates whose loss that is)"""
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None
    row_kv: list | None = None  # at run time: the KV of the row it ran in, while children need it
    visible: object = None  # which positions of that row its children may attend to


def _grow(item: int, cands: list[list[int]], members: list[int], start: int, parent: Node | None) -> Node:
    first = cands[members[0]]
    limit = min(len(cands[m]) - 1 for m in members)  # no member feeds its last token
    end = start + 1
    while end < limit and all(cands[m][end] == first[end] for m in members):
        end += 1
    node = Node(item, start, first[start:end], members, parent=parent)
    for t in range(start, end - 1):  # inside the run every member predicts the same token
        node.picks.append((t - start, first[t + 1], members))
    for token, ms in _by_token(cands, members, end).items():  # where they part ways
        node.picks.append((end - 1 - start, token, ms))
    going_on = [m for m in members if len(cands[m]) - 1 > end]
    node.children = [_grow(item, cands, ms, end, node)
                     for ms in _by_token(cands, going_on, end).values()]
    return node


def _by_token(cands: list[list[int]], members: list[int], pos: int) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = defaultdict(list)
    for m in members:
        groups[cands[m][pos]].append(m)
    return groups


def build_trie(item: int, cands: list[list[int]], share: bool = True) -> list[Node]:
    """The root nodes of one item (one per distinct first token; one per candidate when the
    model cannot share prefixes). Candidates of one token feed nothing and get no node."""
    fed = [m for m, c in enumerate(cands) if len(c) > 1]
    if not share:
        return [_grow(item, cands, [m], 0, None) for m in fed]
    return [_grow(item, cands, ms, 0, None) for ms in _by_token(cands, fed, 0).values()]


def walk(roots: list[Node]):
    stack = list(roots)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)


def distinct_prefixes(cands: list[list[int]]) -> int:
    """The lower bound on tokens pushed for one item: its distinct fed prefixes."""
    return len({tuple(c[:k]) for c in cands for k in range(1, len(c))})


@dataclass(eq=False)
class Row:
    """Sibling nodes (one parent's children, or one item's roots) fed as one packed sequence."""

    nodes: list[Node]
    parent: Node | None

    @property
    def width(self) -> int:
        return sum(len(n.tokens) for n in self.nodes)


def pack(level: list[Node], share: bool = True) -> list[Row]:
    """One row per parent (per item for roots); one row per node when prefixes are not shared
    (sliding-window models run every candidate plainly)."""
    if not share:
        return [Row([n], n.parent) for n in level]
    rows: dict[tuple, Row] = {}
    for node in level:
        key = (node.item, id(node.parent))
        rows.setdefault(key, Row([], node.parent)).nodes.append(node)
    return list(rows.values())


def group_items(roots_per_item: list[list[Node]], budget: int) -> list[list[list[Node]]]:
    """Items whose levels run together: widest first, so that items x widest packed roots of
    each group stays within the budget."""
    width = [sum(len(n.tokens) for n in roots) for roots in roots_per_item]
    order = sorted(range(len(roots_per_item)), key=lambda i: width[i], reverse=True)
    groups, current, widest = [], [], 0
    for i in order:
        if current and (len(current) + 1) * max(widest, width[i]) > budget:
            groups.append(current)
            current, widest = [], 0
        current.append(roots_per_item[i])
        widest = max(widest, width[i])
    if current:
        groups.append(current)
    return groups


def chunk_rows(rows: list[Row], budget: int) -> list[list[Row]]:
    """Rows of one level in forward batches: widest first, rows x padded width <= budget."""
    rows = sorted(rows, key=lambda r: r.width, reverse=True)
    chunks, current, width = [], [], 0
    for row in rows:
        if current and (len(current) + 1) * max(width, row.width) > budget:
            chunks.append(current)
            current, width = [], 0
        current.append(row)
        width = max(width, row.width)
    if current:
        chunks.append(current)
    return chunks

"""Plan prefix-shared scoring: a two-level token trie per item, batched to a token budget.

Every candidate of an item is tokenized in full; the item's candidates share their longest common
token prefix (the trie's trunk), which is run once, and each candidate's remaining tokens (its
branch) are then run on top of the trunk's KV cache. Pure Python, so it is cheap to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def common_prefix_len(seqs: list[list[int]]) -> int:
    """Length of the longest common prefix of token id lists."""
    if not seqs:
        return 0
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for i in range(n):
        tok = first[i]
        if any(s[i] != tok for s in seqs):
            return i
    return n


@dataclass
class ItemPlan:
    """One item: its candidates' token ids and the length of the shared trunk."""

    index: int
    cands: list[list[int]]
    trunk: int  # tokens run once; every candidate keeps >= 1 token after it

    @property
    def branch_lens(self) -> list[int]:
        """Tokens each candidate still feeds after the trunk (its last token is never fed)."""
        return [max(0, len(c) - self.trunk - 1) for c in self.cands]


@dataclass
class Batch:
    """Items whose trunks run in one forward; their branches run in chunks of rows."""

    items: list[ItemPlan]
    branch_chunks: list[list[tuple[int, int]]] = field(default_factory=list)  # (item pos, cand)

    @property
    def trunk_len(self) -> int:
        return max(p.trunk for p in self.items)


def plan_item(index: int, cands: list[list[int]], share: bool = True) -> ItemPlan:
    """Trunk = common prefix, capped so each candidate has its first differing token as a label."""
    if not share:
        return ItemPlan(index, cands, 0)
    trunk = min(common_prefix_len(cands), min(len(c) for c in cands) - 1)
    return ItemPlan(index, cands, max(trunk, 0))


def plan_batches(plans: list[ItemPlan], budget: int) -> list[Batch]:
    """Sort by trunk length, fill batches so padded trunk + branch positions stay within budget."""
    order = sorted(plans, key=lambda p: (p.trunk, max(p.branch_lens, default=0)), reverse=True)
    batches: list[Batch] = []
    current: list[ItemPlan] = []
    for plan in order:
        trial = current + [plan]
        trunk = max(p.trunk for p in trial)
        # trunk-less items never share a batch with trunks: their all-pad trunk rows would be
        # fully masked queries, whose cached values are not finite on every attention backend
        mixed = bool(current) and (plan.trunk == 0) != (current[0].trunk == 0)
        if current and (len(trial) * trunk > budget or mixed):
            batches.append(Batch(current))
            current = [plan]
        else:
            current = trial
    if current:
        batches.append(Batch(current))
    for batch in batches:
        batch.branch_chunks = _chunk_branches(batch, budget)
    return batches


def _chunk_branches(batch: Batch, budget: int) -> list[list[tuple[int, int]]]:
    """Rows (item pos, candidate) with a non-empty branch, longest first, chunked so that
    rows x padded branch length stays within the budget."""
    rows = [(pos, c, n) for pos, plan in enumerate(batch.items)
            for c, n in enumerate(plan.branch_lens) if n > 0]
    rows.sort(key=lambda r: r[2], reverse=True)
    chunks: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    width = 0
    for pos, c, n in rows:
        new_width = max(width, n)
        if current and (len(current) + 1) * new_width > budget:
            chunks.append(current)
            current, new_width = [], n
        current.append((pos, c))
        width = new_width
    if current:
        chunks.append(current)
    return chunks

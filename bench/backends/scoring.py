"""ppl scoring over each item's token trie (bench/backends/trie.py), and OpenCompass's padded
batch values. Mixed into HFBackend; uses its tokenizer encoding, pad_id, share_prefix,
batch_tokens, stats and `_forward`."""

from __future__ import annotations

import torch

from bench.backends.trie import Row, build_trie, chunk_rows, group_items, pack
from bench.errors import BenchError
from bench.tasks.base import Prompt


class TrieScoring:
    @torch.inference_mode()
    def score_candidates(self, items: list[list[Prompt | str]]) -> list[list[dict]]:
        """OpenCompass get_ppl per candidate; shared prefixes are computed once per item.

        Extra keys beside ce/logprob/n_tokens: n_counted (ce's denominator) and first_token,
        which bench.backends.base.oc_batched_ce needs.
        """
        flat = [p for item in items for p in item]
        ids = self._encode(flat, "ppl") if flat else []
        tries, per_item, k = [], [], 0
        for i, item in enumerate(items):
            cands = ids[k:k + len(item)]
            if any(not c for c in cands):
                raise BenchError(f"model '{self.spec.name}': item {i} has a candidate that "
                                 "tokenizes to nothing; every candidate needs text")
            per_item.append(cands)
            tries.append(build_trie(i, cands, share=self.share_prefix))
            k += len(item)
        nll = {(i, c): 0.0 for i, cands in enumerate(per_item) for c in range(len(cands))}
        for group in group_items(tries, self.batch_tokens):
            level, parents = [root for roots in group for root in roots], []
            while level:  # a level's nodes read their parents' KV; then that KV is dropped
                for chunk in chunk_rows(pack(level, self.share_prefix), self.batch_tokens):
                    self._score_rows(chunk, nll)
                for node in parents:
                    node.row_kv = node.visible = None
                parents, level = level, [c for n in level for c in n.children]
        results = []
        for i, cands in enumerate(per_item):
            row = []
            for c, cand in enumerate(cands):
                total = nll[(i, c)]
                counted = sum(1 for t in cand if t != self.pad_id)
                row.append({"ce": total / counted, "logprob": -total, "n_tokens": len(cand),
                            "n_counted": counted, "first_token": cand[0]})
                self.stats["tokens_naive"] += len(cand)
                self.stats["sequences"] += 1
            results.append(row)
        return results

    @torch.inference_mode()
    def oc_pad_nll(self, pairs: list[tuple[int, int]]) -> list[float]:
        """CE of `token` predicted from the last of `k` left pads (0.0 for k == 0).

        OpenCompass scores a ppl batch left-padded without position ids, so a padded row also
        counts its first real token, predicted from a fully masked pad position; see
        bench.backends.base.oc_batched_ce.
        """
        width = max((k for k, _ in pairs), default=0)
        if width == 0:
            return [0.0 for _ in pairs]
        ids = torch.full((1, width), self.pad_id, dtype=torch.long)
        out = self._forward(ids, torch.zeros_like(ids), 0)
        logp = torch.log_softmax(out.logits[0].float(), dim=-1)
        return [0.0 if k == 0 else -logp[k - 1, tok].item() for k, tok in pairs]

    def _gather_nll(self, logits: torch.Tensor, picks: list[tuple[int, int, int]]) -> list[float]:
        """Cross-entropy (float32) at (row, position, label) picks; a pad-id label counts zero,
        as OpenCompass's ignore_index."""
        if not picks:
            return []
        rows, pos, labels = (torch.tensor(x, device=logits.device) for x in zip(*picks))
        picked = logits[rows, pos].float()
        nll = torch.logsumexp(picked, dim=-1) - picked.gather(-1, labels[:, None])[:, 0]
        return torch.where(labels == self.pad_id, torch.zeros_like(nll), nll).tolist()

    def _score_rows(self, chunk: list[Row], nll: dict[tuple[int, int], float]) -> None:
        """Feed a chunk of packed rows. A row's prefix is one copy of its parent's row KV; each
        node in it sees the positions its parent may see, then its own tokens causally (a 4D
        additive mask, padded rows and positions hidden). Adds the picks' losses and keeps, for
        nodes with children, their row's KV and what of it they see."""
        from transformers import DynamicCache

        n_rows, width = len(chunk), max(r.width for r in chunk)
        prefix = max((r.parent.visible.shape[0] for r in chunk if r.parent is not None), default=0)
        ids = torch.full((n_rows, width), self.pad_id, dtype=torch.long)
        positions = torch.zeros((n_rows, width), dtype=torch.long)
        allow = torch.zeros((n_rows, width, prefix + width), dtype=torch.bool)
        picks, owners, segments = [], [], []
        for r, row in enumerate(chunk):
            seen = row.parent.visible if row.parent is not None else None
            offset = 0
            for node in row.nodes:
                n = len(node.tokens)
                ids[r, offset: offset + n] = torch.tensor(node.tokens)
                positions[r, offset: offset + n] = node.start + torch.arange(n)
                if seen is not None:
                    allow[r, offset: offset + n, : seen.shape[0]] = seen
                allow[r, offset: offset + n, prefix + offset: prefix + offset + n] = torch.ones(
                    n, n, dtype=torch.bool).tril()
                for off, token, members in node.picks:
                    picks.append((r, offset + off, token))
                    owners.append([(node.item, m) for m in members])
                segments.append((r, node, offset, seen))
                offset += n
            allow[r, offset:, prefix] = True  # padding queries look at a real key: stay finite
        kw = {"position_ids": positions.to(self.device)}
        if self.share_prefix:
            mask = torch.zeros(allow.shape, dtype=self.dtype).masked_fill_(
                ~allow, torch.finfo(self.dtype).min)[:, None]
        else:  # one plain sequence per row: the model builds its own (e.g. sliding-window) mask
            mask = (torch.arange(width)[None] < torch.tensor([r.width for r in chunk])[:, None]).long()
        if prefix:
            parents = [r.parent for r in chunk]
            layers = []
            for li, (k0, v0) in enumerate(next(p for p in parents if p is not None).row_kv):
                keys = k0.new_zeros((n_rows, k0.shape[1], prefix, k0.shape[3]))
                values = v0.new_zeros((n_rows, v0.shape[1], prefix, v0.shape[3]))
                for r, p in enumerate(parents):
                    if p is not None:
                        length = p.visible.shape[0]
                        keys[r, :, :length] = p.row_kv[li][0][0]
                        values[r, :, :length] = p.row_kv[li][1][0]
                layers.append((keys, values))
            kw["cache"] = DynamicCache(ddp_cache_data=layers)
        keep = any(node.children for row in chunk for node in row.nodes)
        out = self._forward(ids, mask, sum(r.width for r in chunk), use_cache=keep, **kw)
        for value, keys in zip(self._gather_nll(out.logits, picks), owners):
            for key in keys:
                nll[key] += value
        if keep:
            cache = self.cache_of(out)
            kv = [[(layer.keys[r: r + 1], layer.values[r: r + 1]) for layer in cache.layers]
                  for r in range(n_rows)]
            for r, node, offset, seen in segments:
                if node.children:
                    visible = torch.zeros(prefix + width, dtype=torch.bool)
                    if seen is not None:
                        visible[: seen.shape[0]] = seen
                    visible[prefix + offset: prefix + offset + len(node.tokens)] = True
                    node.row_kv, node.visible = kv[r], visible
        del out

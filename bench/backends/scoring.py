"""ppl scoring over each item's token trie (bench/backends/trie.py), and OpenCompass's padded
batch values. Mixed into HFBackend; uses its tokenizer encoding, pad_id, share_prefix,
batch_tokens, stats and `_forward`."""

from __future__ import annotations

import torch

from bench.backends.trie import Node, build_trie, chunk_level, group_items
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
                for chunk in chunk_level(level, self.batch_tokens):
                    self._score_level(chunk, nll)
                for node in parents:
                    node.kv = node.mask = None
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

    def _score_level(self, chunk: list[Node], nll: dict[tuple[int, int], float]) -> None:
        """Feed one chunk of trie nodes of the same depth, each on its ancestors' KV cache
        (right-padded, masked), add their picks' losses, and keep the KV its children need."""
        from transformers import DynamicCache

        rows, width = len(chunk), max(len(n.tokens) for n in chunk)
        ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(rows, width, dtype=torch.long)
        picks, owners = [], []
        for r, node in enumerate(chunk):
            ids[r, : len(node.tokens)] = torch.tensor(node.tokens)
            mask[r, : len(node.tokens)] = 1
            for offset, token, members in node.picks:
                picks.append((r, offset, token))
                owners.append([(node.item, m) for m in members])
        starts = torch.tensor([n.start for n in chunk])
        kw = {"position_ids": (starts[:, None] + torch.arange(width)[None]).to(self.device)}
        parents = [n.parent for n in chunk]
        prefix = max((p.mask.shape[0] for p in parents if p is not None), default=0)
        if prefix:
            pad = torch.zeros(rows, prefix, dtype=torch.long)
            layers = []
            for li, (k0, v0) in enumerate(next(p for p in parents if p is not None).kv):
                keys = k0.new_zeros((rows, k0.shape[1], prefix, k0.shape[3]))
                values = v0.new_zeros((rows, v0.shape[1], prefix, v0.shape[3]))
                for r, p in enumerate(parents):
                    if p is not None:
                        n = p.mask.shape[0]
                        keys[r, :, :n], values[r, :, :n] = p.kv[li][0][0], p.kv[li][1][0]
                layers.append((keys, values))
            for r, p in enumerate(parents):
                if p is not None:
                    pad[r, : p.mask.shape[0]] = p.mask
            kw["cache"] = DynamicCache(ddp_cache_data=layers)
            mask = torch.cat([pad, mask], dim=1)
        keep = any(n.children for n in chunk)
        out = self._forward(ids, mask, sum(len(n.tokens) for n in chunk), use_cache=keep, **kw)
        for value, keys in zip(self._gather_nll(out.logits, picks), owners):
            for key in keys:
                nll[key] += value
        if keep:
            cache = self.cache_of(out)
            for r, node in enumerate(chunk):
                if node.children:  # its full prefix: ancestors' (padded) + its own tokens
                    n = prefix + len(node.tokens)
                    node.kv = [(layer.keys[r: r + 1, :, :n], layer.values[r: r + 1, :, :n])
                               for layer in cache.layers]
                    node.mask = mask[r, :n]
        del out

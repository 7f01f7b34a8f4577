"""Scoring over each item's token trie (bench/backends/trie.py): OpenCompass ppl values (and its
padded batch values), and lm-eval's loglikelihood. Mixed into HFBackend; uses its tokenizer,
encoding, pad_id, max_seq_len, share_prefix, batch_tokens, stats and `_forward`."""

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
        per_item, k = [], 0
        for i, item in enumerate(items):
            cands = ids[k:k + len(item)]
            if any(not c for c in cands):
                raise BenchError(f"model '{self.spec.name}': item {i} has a candidate that "
                                 "tokenizes to nothing; every candidate needs text")
            per_item.append(cands)
            k += len(item)
        results = []
        for cands, scored in zip(per_item, self._token_scores(per_item)):
            row = []
            for cand, (nll, _) in zip(cands, scored):
                total = 0.0  # a plain loop in token order: sum() compensates from Python 3.12
                for token, value in zip(cand[1:], nll[1:]):
                    if token != self.pad_id:  # OpenCompass's ignore_index
                        total += value
                counted = sum(1 for t in cand if t != self.pad_id)
                row.append({"ce": total / counted, "logprob": -total, "n_tokens": len(cand),
                            "n_counted": counted, "first_token": cand[0]})
            results.append(row)
        return results

    @torch.inference_mode()
    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[dict]:
        """lm-eval's loglikelihood: per (context, continuation), in request order, {"logprob"
        (summed over the continuation's tokens), "token_logprobs", "n_tokens" (continuation
        tokens), "is_greedy" (every continuation token is the argmax)}.

        The strings are tokenized as they are (no template), as lm-eval 0.4 HFLM does (see
        `_lm_eval_ids`); requests whose context tokens agree run as one trie item, so a shared
        context is pushed once.
        """
        pairs = self._lm_eval_ids(requests)
        groups: dict[tuple[int, ...], list[int]] = {}
        seqs = []
        for i, (ctx, cont) in enumerate(pairs):
            seq = ctx + cont
            if self.max_seq_len:  # HFLM keeps the last max_length + 1 tokens
                if len(cont) > self.max_seq_len:
                    raise BenchError(f"model '{self.spec.name}': request {i}: the continuation "
                                     f"has {len(cont)} tokens, over max_seq_len {self.max_seq_len}")
                seq = seq[-(self.max_seq_len + 1):]
            seqs.append(seq)
            groups.setdefault(tuple(seq[:-len(cont)]), []).append(i)
        results: list[dict] = [{} for _ in requests]
        scored = self._token_scores([[seqs[i] for i in idxs] for idxs in groups.values()])
        for idxs, item in zip(groups.values(), scored):
            for i, (nll, greedy) in zip(idxs, item):
                n = len(pairs[i][1])
                logprobs = [-v for v in nll[-n:]]
                results[i] = {"logprob": sum(logprobs), "token_logprobs": logprobs,
                              "n_tokens": n, "is_greedy": all(greedy[-n:])}
        return results

    def _lm_eval_ids(self, requests: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(context ids, continuation ids) as lm-eval 0.4.x HFLM.loglikelihood builds them.

        The context's trailing whitespace moves to the continuation; context = encode(context),
        continuation = encode(context + continuation)[len(context):]. encode adds the tokenizer's
        special tokens unless the text starts with the prefix token's text (HFLM.tok_encode with
        add_bos_token unset). An empty context is [prefix token] (bos, else eos) before the
        continuation encoded without special tokens, or the continuation's first token when that
        is the prefix token.
        """
        tok, name = self.tokenizer, self.spec.name
        prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        bos = tok.decode(prefix) if prefix is not None else None
        texts = []  # (text, add_special_tokens) per request: (continuation,) or (whole, context)
        for ctx, cont in requests:
            if ctx == "":
                texts.append(((cont, False),))
            else:
                cut = len(ctx.rstrip())
                ctx, cont = ctx[:cut], ctx[cut:] + cont
                texts.append(tuple((t, bos is None or not t.startswith(bos))
                                   for t in (ctx + cont, ctx)))
        ids: dict[tuple[str, bool], list[int]] = {}
        for special in (True, False):
            batch = list(dict.fromkeys(t for job in texts for t, s in job if s == special))
            if batch:
                ids.update(zip(((t, special) for t in batch),
                               tok(batch, add_special_tokens=special)["input_ids"]))
        pairs = []
        for i, job in enumerate(texts):
            if len(job) == 1:
                cont = ids[job[0]]
                if prefix is None:
                    raise BenchError(f"model '{name}': request {i} has an empty context and the "
                                     "tokenizer has neither bos nor eos to stand for it")
                ctx, cont = ([prefix], cont) if cont[:1] != [prefix] else (cont[:1], cont[1:])
            else:
                whole, ctx = ids[job[0]], ids[job[1]]
                cont = whole[len(ctx):]
            if not cont:
                raise BenchError(f"model '{name}': request {i}: the continuation tokenizes to "
                                 "nothing (lm-eval needs at least one continuation token)")
            if not ctx:
                raise BenchError(f"model '{name}': request {i}: the context tokenizes to nothing")
            pairs.append((ctx, cont))
        return pairs

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

    def _token_scores(self, seqs: list[list[list[int]]]) -> list[list[tuple[list, list]]]:
        """Per item, per token sequence: (nll, greedy) per token. Index t scores token t predicted
        from the tokens before it: float32 cross-entropy, and whether it is the argmax; index 0
        is (0.0, False). Each item's shared prefixes run once."""
        tries = [build_trie(i, cands, share=self.share_prefix) for i, cands in enumerate(seqs)]
        scores = {(i, c): ([0.0] * len(seq), [False] * len(seq))
                  for i, cands in enumerate(seqs) for c, seq in enumerate(cands)}
        for group in group_items(tries, self.batch_tokens):
            level, parents = [root for roots in group for root in roots], []
            while level:  # a level's nodes read their parents' KV; then that KV is dropped
                for chunk in chunk_rows(pack(level, self.share_prefix), self.batch_tokens):
                    self._score_rows(chunk, scores)
                for node in parents:
                    node.row_kv = node.visible = None
                parents, level = level, [c for n in level for c in n.children]
        self.stats["tokens_naive"] += sum(len(seq) for cands in seqs for seq in cands)
        self.stats["sequences"] += sum(len(cands) for cands in seqs)
        return [[scores[(i, c)] for c in range(len(cands))] for i, cands in enumerate(seqs)]

    @staticmethod
    def _gather(logits: torch.Tensor, picks: list[tuple[int, int, int]]) -> tuple[list, list]:
        """Cross-entropy (float32) at (row, position, label) picks, and whether the label is the
        argmax there."""
        if not picks:
            return [], []
        rows, pos, labels = (torch.tensor(x, device=logits.device) for x in zip(*picks))
        picked = logits[rows, pos].float()
        nll = torch.logsumexp(picked, dim=-1) - picked.gather(-1, labels[:, None])[:, 0]
        return nll.tolist(), (picked.argmax(dim=-1) == labels).tolist()

    def _score_rows(self, chunk: list[Row], scores: dict[tuple[int, int], tuple]) -> None:
        """Feed a chunk of packed rows. A row's prefix is one copy of its parent's row KV; each
        node in it sees the positions its parent may see, then its own tokens causally (a 4D
        additive mask, padded rows and positions hidden). Writes the picks' (nll, greedy) into
        `scores` at the token they predict and keeps, for nodes with children, their row's KV
        and what of it they see."""
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
                    owners.append((node.start + off + 1, [(node.item, m) for m in members]))
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
        for value, greedy, (t, keys) in zip(*self._gather(out.logits, picks), owners):
            for key in keys:
                scores[key][0][t], scores[key][1][t] = value, greedy
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

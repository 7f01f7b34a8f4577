"""Batched greedy decoding for the transformers backend: KV cache, left padding as OpenCompass,
a row leaves the batch as soon as it is finished (EOS, stop word, max_new_tokens, or the caller's
`stop(text)` saying the post-processed answer can no longer change)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench.errors import BenchError
from bench.tasks.base import Prompt


class GreedyDecoding:
    """Mixed into HFBackend; uses its tokenizer, eos_ids, stop_words, pad_id, device, stats,
    repetition_penalty, gen_batch_tokens, _encode and _forward."""

    def generate(self, prompts: list[Prompt], max_new_tokens: int,
                 stop: Callable[[str], bool] | None = None) -> list[str]:
        """Batched greedy decoding with KV cache; a row leaves the batch once it is finished."""
        return self._generate_ids(self._encode(prompts, "gen") if prompts else [], max_new_tokens,
                                  stop)

    def generate_chat(self, conversations: list[list[dict]], max_new_tokens: int,
                      stop: Callable[[str], bool] | None = None,
                      temperature: float = 0.0) -> list[str]:
        """Greedy answers to conversations (role/content messages ending with the user), each
        rendered by render_chat: the chat template, the model's system prompt."""
        if temperature:
            raise BenchError(f"model '{self.spec.name}': the local backend decodes greedily "
                             "(temperature 0)")
        texts = [self.render_chat(c) for c in conversations]
        ids = self._tokenize(texts, special=self.mode == "base") if texts else []
        return self._generate_ids(ids, max_new_tokens, stop)

    @torch.inference_mode()
    def _generate_ids(self, ids: list[list[int]], max_new_tokens: int,
                      stop: Callable[[str], bool] | None) -> list[str]:
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        outputs: list[str] = [""] * len(ids)
        budget = self.gen_batch_tokens
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and (end - start + 1) * (
                    len(ids[order[start]]) + max_new_tokens) <= budget:
                end += 1
            rows = order[start:end]
            for r, text in zip(rows, self._generate_batch([ids[r] for r in rows],
                                                          max_new_tokens, stop)):
                outputs[r] = text
            start = end
        return outputs

    def _finish(self, tokens: list[int], stop: Callable[[str], bool] | None,
                limit: int) -> tuple[str, bool]:
        """Decoded text so far (cut at stop words) and whether this sequence is done."""
        text = self.tokenizer.decode(tokens, skip_special_tokens=self.mode == "base")
        cut = False
        for word in self.stop_words:
            if word in text:
                text, cut = text.split(word)[0], True
        return text, cut or len(tokens) >= limit or bool(stop and stop(text))

    def _generate_batch(self, prompts: list[list[int]], max_new_tokens: int,
                        stop: Callable[[str], bool] | None) -> list[str]:
        n, width = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(n, width, dtype=torch.long)
        for r, p in enumerate(prompts):  # left padding, as OpenCompass
            ids[r, width - len(p):] = torch.tensor(p)
            mask[r, width - len(p):] = 1
        mask, seq = mask.to(self.device), ids.to(self.device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self._forward(seq, mask, sum(len(p) for p in prompts), position_ids=pos,
                            use_cache=True, logits_to_keep=1)
        cache, last_pos = self.cache_of(out), pos[:, -1]
        nxt = self._pick(seq, out.logits[:, -1])
        self.stats["sequences"] += n
        self.stats["tokens_naive"] += sum(len(p) + max_new_tokens - 1 for p in prompts)
        active = list(range(n))
        gen: list[list[int]] = [[] for _ in range(n)]
        texts = [""] * n
        while True:
            keep = []
            for j, r in enumerate(active):
                tok = int(nxt[j])
                if tok in self.eos_ids:
                    continue
                gen[r].append(tok)
                texts[r], done = self._finish(gen[r], stop, max_new_tokens)
                if not done:
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(active):
                sel = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(sel)
                mask, last_pos, nxt, seq = mask[sel], last_pos[sel], nxt[sel.cpu()], seq[sel]
                active = [active[j] for j in keep]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
            seq = torch.cat([seq, nxt[:, None].to(self.device)], dim=1)
            last_pos = last_pos + 1
            out = self._forward(nxt[:, None], mask, len(active), cache=cache,
                                position_ids=last_pos[:, None], use_cache=True)
            nxt = self._pick(seq, out.logits[:, -1])
        return texts

    def _pick(self, seq: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Greedy next tokens (float32 logits, repetition penalty over the padded rows as HF)."""
        scores = logits.float()
        if self.repetition_penalty:
            from transformers import RepetitionPenaltyLogitsProcessor

            scores = RepetitionPenaltyLogitsProcessor(self.repetition_penalty)(seq, scores)
        return scores.argmax(-1).cpu()

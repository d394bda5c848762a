"""A language model of ours as an lm-evaluation-harness model (its ``LM`` API)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from lm_eval.api.model import TemplateLM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tokenizers import Tokenizer
from torch import nn

from framework.errors import ConfigError

END_OF_TEXT = "<|endoftext|>"


def prefix_token(tokenizer: Tokenizer) -> int:
    """The token a scored text is conditioned on when nothing precedes it: ``<|endoftext|>``
    where the tokenizer has it (byte-level BPE), else the newline, which separates documents in
    the framework's corpora (a character tokenizer has no special tokens).

    Raises:
        ConfigError: the tokenizer has neither as one token.
    """
    token = tokenizer.token_to_id(END_OF_TEXT)
    if token is not None:
        return token
    newline = tokenizer.encode("\n", add_special_tokens=False).ids
    if len(newline) != 1:
        raise ConfigError(f"The run's tokenizer has no {END_OF_TEXT} token and encodes a newline as {newline}, not one token.")
    return newline[0]


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode (no dropout) inside the block, in its earlier mode after it."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class HarnessModel(TemplateLM):
    """lm-evaluation-harness's ``LM`` API (Gao et al., 2023, EleutherAI) over a causal model.

    ``loglikelihood`` sums the model's log-probabilities of the continuation's tokens given
    everything before it, left-truncated to the last ``block_size`` tokens, and says whether
    each continuation token was the argmax. Context and continuation are encoded together and
    split at the context's length (``TemplateLM``), unless the joint encoding merges tokens
    across that boundary (a byte-level BPE, a passage cut inside a word): then the continuation
    is encoded on its own, so the tokens scored are always the continuation's text. ``loglikelihood_rolling`` scores a
    whole text in the harness's own disjoint rolling windows (``get_rolling_token_windows``
    with ``context_len=1``, conditioned on :func:`prefix_token`), as its Hugging Face model
    does. ``generate_until`` decodes greedily, one request at a time.

    Args:
        model: maps ``(B, T)`` int64 ids to ``(B, T, V)`` logits, causal (a position never sees
            later ones, so right padding changes nothing before it); it runs in eval mode while
            scoring and is given back in the mode it was in.
        tokenizer: the run's tokenizer.
        block_size: the longest context, in tokens.
        batch_size: requests scored per forward pass (>= 1).
        device: where the model's parameters are.
    """

    def __init__(
        self, model: nn.Module, tokenizer: Tokenizer, block_size: int, batch_size: int = 32, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__()
        self.model, self.hf_tokenizer = model, tokenizer
        self.block_size, self.batch_size, self._device = block_size, batch_size, torch.device(device)
        self._prefix = prefix_token(tokenizer)

    @property
    def eot_token_id(self) -> int:
        return self._prefix

    @property
    def max_length(self) -> int:
        return self.block_size

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        """The token ids of ``string``, without special tokens."""
        return self.hf_tokenizer.encode(string, add_special_tokens=False).ids

    def tok_decode(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``, special tokens included."""
        return self.hf_tokenizer.decode(list(tokens), skip_special_tokens=False)

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        context_ids, continuation_ids = super()._encode_pair(context, continuation)
        if self.tok_encode(context + continuation)[: len(context_ids)] == context_ids:
            return context_ids, continuation_ids
        spaces = len(context) - len(context.rstrip())  # TemplateLM moves trailing spaces to the continuation
        return context_ids, self.tok_encode(context[len(context) - spaces :] + continuation if spaces else continuation)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        return super().loglikelihood(requests, disable_tqdm=True)  # no progress bar: runs inside other commands' output

    @torch.no_grad()
    def score(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[tuple[float, bool]]:
        """``(log-probability in nats, greedy)`` of each ``(context ids, continuation ids)``.

        The model reads ``(context + continuation)[:-1]``, cut to its last ``block_size`` ids;
        the last ``len(continuation)`` positions are scored (float32 log-softmax of those
        positions only, on the model's device). Pairs run ``batch_size`` at a time, longest
        first, right-padded.

        Raises:
            ConfigError: a continuation longer than ``block_size`` or an empty one.
        """
        for _, continuation in pairs:
            if not 0 < len(continuation) <= self.block_size:
                raise ConfigError(
                    f"A harness continuation of {len(continuation)} tokens cannot be scored with a context of {self.block_size} "
                    "tokens (data.block_size): it must be 1 to block_size tokens long."
                )
        inputs = [(list(context) + list(continuation))[-(self.block_size + 1) : -1] for context, continuation in pairs]
        order = sorted(range(len(pairs)), key=lambda index: -len(inputs[index]))
        results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
        with evaluating(self.model):
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                ids = torch.zeros(len(batch), len(inputs[batch[0]]), dtype=torch.long)
                rows, positions, targets = [], [], []
                for row, index in enumerate(batch):
                    ids[row, : len(inputs[index])] = torch.tensor(inputs[index])
                    continuation, end = list(pairs[index][1]), len(inputs[index])
                    rows += [row] * len(continuation)
                    positions += range(end - len(continuation), end)
                    targets += continuation
                logits = self.model(ids.to(self.device))[torch.tensor(rows), torch.tensor(positions)].float()
                targets_tensor = torch.tensor(targets, device=logits.device)
                values = F.log_softmax(logits, dim=-1).gather(1, targets_tensor[:, None]).squeeze(1).cpu()
                greedy = (logits.argmax(dim=-1) == targets_tensor).cpu()
                offset = 0
                for index in batch:
                    length = len(pairs[index][1])
                    results[index] = (values[offset : offset + length].sum().item(), bool(greedy[offset : offset + length].all()))
                    offset += length
        return results

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        results = self.score([(context, continuation) for _, context, continuation in requests])
        for (request, _, _), result in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", request, result)
        return results

    def rolling_windows(self, tokens: list[int]) -> list[tuple[list[int], list[int]]]:
        """The harness's disjoint rolling windows over ``tokens``: every token predicted once,
        each window with up to ``block_size`` tokens of context."""
        windows = get_rolling_token_windows(
            token_list=tokens, prefix_token=self.prefix_token_id, max_seq_len=self.block_size, context_len=1
        )
        return [make_disjoint_window(window) for window in windows]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        per_request = [self.rolling_windows(self.tok_encode(request.args[0])) for request in requests]
        flat = self.score([window for windows in per_request for window in windows])
        totals, position = [], 0
        for request, windows in zip(requests, per_request):
            total = sum(value for value, _ in flat[position : position + len(windows)])
            position += len(windows)
            self.cache_hook.add_partial("loglikelihood_rolling", (request.args[0],), total)
            totals.append(total)
        return totals

    @torch.no_grad()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy continuations, stopped at the first of the request's ``until`` strings (cut
        there) or after ``max_gen_toks`` tokens (256 when not given)."""
        with evaluating(self.model):
            return [self._generate(*request.args) for request in requests]

    def _generate(self, context: str, settings: dict) -> str:
        until = self._stop_strings(settings.get("until"))
        ids = self.tok_encode(context) or [self.prefix_token_id]
        start, text = len(ids), ""
        for _ in range(int(settings.get("max_gen_toks", 256))):
            logits = self.model(torch.tensor([ids[-self.block_size :]], device=self.device))[0, -1]
            ids.append(int(logits.argmax()))
            text = self.tok_decode(ids[start:])
            if any(stop in text for stop in until):
                break
        for stop in until:
            text = text.split(stop)[0]
        self.cache_hook.add_partial("generate_until", (context, settings), text)
        return text

    def _stop_strings(self, until: str | Iterable[str] | None) -> list[str]:
        """The request's stop strings, and ``<|endoftext|>`` where the tokenizer has it."""
        stops = [until] if isinstance(until, str) else list(until or [])
        return [*stops, END_OF_TEXT] if self.hf_tokenizer.token_to_id(END_OF_TEXT) is not None else stops

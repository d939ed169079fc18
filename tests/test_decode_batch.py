"""Decoding many texts in one call: the same greedy text as one by one, no more work than one by one,
the thread count it runs with, and the options that keep an answer from looping."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from genembed import backends
from genembed.backbone import cache_keyword
from genembed.decoders import generate, greedy, penalise
from genembed.errors import InputError
from genembed.generate import greedy_from_embeddings

TEXTS = ["how do I boil an egg", "paris", "explain how a neural network learns step by step", "write a poem",
         "what is the capital of france"]


class EndsEarly:
    """The tiny backbone's forward, made to end a row (its end-of-turn token) whenever the row's own best
    token is one of `enders`: a deterministic function of each row alone, so rows end at different steps
    and the same step whether decoded alone or in a batch. Counts the rows of every call."""

    def __init__(self, backbone, enders):
        self.model, self.eos, self.enders, self.rows = backbone.model, backbone.tokenizer.eos_token_id, enders, []

    def __call__(self, **kw):
        out = self.model(**kw)
        best = out.logits[:, -1].argmax(-1)
        ends = torch.isin(best, torch.tensor(sorted(self.enders)))
        out.logits[ends, -1, self.eos] = out.logits[:, -1].max() + 10
        self.rows.append(out.logits.shape[0])
        return out


def runtime(tiny_model, lm):
    """A stand-in backend (backends.py): torch's own encoder forward, `lm` for decoding steps."""
    return SimpleNamespace(base=tiny_model.backbone.model.base_model, lm=lm)


def ending_model(tiny_model, n_enders=40):
    with torch.no_grad():
        tiny_model.special_tokens.normal_(0, 1.0)  # something to say
    vocab = tiny_model.backbone.model.get_input_embeddings().weight.shape[0]
    enders = set(torch.randperm(vocab, generator=torch.Generator().manual_seed(0))[:n_enders].tolist())
    lm = EndsEarly(tiny_model.backbone, enders)
    tiny_model.runtime = runtime(tiny_model, lm)
    return lm


def test_batched_soft_prompt_decodes_equal_one_by_one_and_do_no_more_work(tiny_model):
    lm = ending_model(tiny_model)
    ids, mask = tiny_model.tokenize(TEXTS)
    with torch.no_grad():
        prompts = tiny_model(ids, mask)[0]
    batched = greedy(tiny_model, prompts, 24)
    batched_rows = sum(lm.rows)
    lm.rows.clear()
    alone = [greedy(tiny_model, prompts[i:i + 1], 24)[0] for i in range(len(TEXTS))]
    assert batched == alone
    assert len({len(r) for r in alone}) > 1 and min(len(r) for r in alone) < 24  # rows end at different steps
    assert batched_rows <= sum(lm.rows)  # a row that has ended leaves the batch
    # the loop before rows left the batch writes the same tokens, doing more work
    lm.rows.clear()
    assert greedy_from_embeddings(tiny_model.backbone, prompts, 24, lm=lm) == batched
    assert sum(lm.rows) > batched_rows


def test_batched_padded_request_decodes_equal_one_by_one(tiny_model):
    ending_model(tiny_model)
    tok = tiny_model.backbone.tokenizer
    prompts = [tok(t)["input_ids"] for t in TEXTS]  # different lengths: left-padded in a batch
    assert len({len(p) for p in prompts}) > 1
    batched = generate(tiny_model, prompts, 20, batch_size=8)
    alone = [generate(tiny_model, [p], 20)[0] for p in prompts]
    assert batched == alone
    assert generate(tiny_model, prompts, 20, batch_size=2) == alone


def test_decode_of_texts_in_one_call_equals_one_at_a_time(tiny_model):
    with torch.no_grad():
        tiny_model.special_tokens.normal_(0, 1.0)
    for via in ("soft-prompt", "words"):
        together = tiny_model.decode(TEXTS, max_new_tokens=12, via=via)
        assert together == [tiny_model.decode(t, max_new_tokens=12, via=via) for t in TEXTS]


class Loops:
    """A toy LM whose logits never change: token 5 first, then 6, 7, … — greedy writes 5 forever."""

    def __init__(self, vocab, cache_kw):
        self.vocab, self.cache_kw = vocab, cache_kw

    def __call__(self, inputs_embeds, **kw):
        logits = torch.full((inputs_embeds.shape[0], 1, self.vocab), -5.0)
        logits[:, :, 5:12] = torch.tensor([3.0, 2.9, 2.8, 2.7, 2.6, 2.5, 2.4])
        return SimpleNamespace(logits=logits, **{self.cache_kw: SimpleNamespace(batch_select_indices=lambda i: None)})


def looping_model(tiny_model):
    vocab = tiny_model.backbone.model.get_input_embeddings().weight.shape[0]
    tiny_model.runtime = runtime(tiny_model, Loops(vocab, cache_keyword(tiny_model.backbone.model)))
    return torch.zeros(2, 3, tiny_model.config.hidden_size)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_repeat_ngram_size_leaves_no_ngram_written_twice(tiny_model, n):
    prompts = looping_model(tiny_model)
    assert greedy(tiny_model, prompts, 12)[0] == [5] * 12  # the loop, with the options off
    for row in greedy(tiny_model, prompts, 12, no_repeat_ngram_size=n):
        grams = [tuple(row[i:i + n]) for i in range(len(row) - n + 1)]
        assert len(grams) == len(set(grams)) and len(row) >= 7


def test_repetition_penalty_discourages_written_tokens(tiny_model):
    prompts = looping_model(tiny_model)
    row = greedy(tiny_model, prompts, 4, repetition_penalty=1.2)[0]
    assert row == [5, 6, 7, 8]  # 3.0 / 1.2 = 2.5 falls below 2.9: each written token gives way to the next
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    assert penalise(logits.clone(), torch.tensor([[0, 1]]), 2.0).tolist() == [[1.0, -4.0, 1.0]]


@pytest.mark.parametrize("option,value", [("repetition_penalty", 0), ("repetition_penalty", -1.0),
                                          ("repetition_penalty", float("nan")), ("repetition_penalty", "2"),
                                          ("no_repeat_ngram_size", -1), ("no_repeat_ngram_size", 2.5),
                                          ("no_repeat_ngram_size", True), ("max_new_tokens", 0)])
def test_decoding_options_out_of_range_are_refused_by_name(tiny_model, option, value):
    with pytest.raises(InputError, match=option):
        tiny_model.decode("paris", via="soft-prompt", **{option: value})
    with pytest.raises(InputError, match=option):
        tiny_model.decode_embeddings(torch.ones(tiny_model.config.embedding_dim), via="words", **{option: value})


def test_decoding_runs_with_the_models_thread_count_and_restores_the_process_count(tiny_model):
    before = torch.get_num_threads()
    seen = []
    lm = tiny_model.backbone.model

    def counting(**kw):
        seen.append(torch.get_num_threads())
        return lm(**kw)

    tiny_model.runtime = runtime(tiny_model, counting)
    tiny_model.num_threads = 1
    tiny_model.decode(["paris", "an egg"], max_new_tokens=3, via="soft-prompt")
    assert seen and set(seen) == {1} and torch.get_num_threads() == before
    tiny_model.num_threads = 0
    with pytest.raises(InputError, match="num_threads"):
        tiny_model.decode("paris", via="soft-prompt")


def test_the_default_thread_count_follows_the_free_cores(monkeypatch):
    most = torch.get_num_threads()
    monkeypatch.setattr(backends, "_meter", lambda: 0.2)  # another process holds (almost) every core
    assert backends.choose_threads() == 1
    monkeypatch.setattr(backends, "_meter", lambda: 64.0)  # idle: the process's own count, never more
    assert backends.choose_threads() == most
    monkeypatch.setattr(backends, "_meter", lambda: None)  # no /proc/stat: the process's own count
    assert backends.choose_threads() == most
    assert backends.choose_threads(3) == 3
    free = backends.FreeCores(window=0.01)()
    assert free is None or 0 <= free <= len(backends.FreeCores().cpus)


def test_the_decode_command_takes_the_options_and_refuses_bad_values(tiny_model, tmp_path, run_cli):
    from genembed.checkpoint import save_checkpoint

    def run(*args):
        code, out, err = run_cli("decode", "paris", "--model", str(ckpt), *args)
        return code, out + err

    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    code, out = run("--max-new-tokens", "3", "--threads", "1", "--repetition-penalty", "1.3",
                    "--no-repeat-ngram-size", "2")
    assert code == 0 and "decoded:" in out, out
    for option, value in [("--repetition-penalty", "0"), ("--no-repeat-ngram-size", "-1"), ("--threads", "0")]:
        code, out = run(option, value)
        assert code == 2 and "Traceback" not in out, out
    assert "repetition_penalty must be a finite number > 0" in run("--repetition-penalty", "0")[1]


def test_decoding_many_texts_shows_a_bar_of_texts_written(tiny_model, capsys):
    tiny_model.decode(TEXTS, max_new_tokens=2, batch_size=2, show_progress_bar=True)
    written = capsys.readouterr().err
    assert "generating" in written and "5/5" in written  # the writing, not only the encoding before it
    tiny_model.decode(TEXTS, max_new_tokens=2, batch_size=2, show_progress_bar=False)
    assert "generating" not in capsys.readouterr().err

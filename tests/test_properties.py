"""Property-based tests (hypothesis): whatever text a user sends, encode / decode / logit_lens and
the CLI readers give one finite row per input in order, or a clear error naming the argument;
no internal error escapes."""
from functools import partial

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genembed.inspection import logit_lens

SPECIALS = ["<|im_end|>", "<|im_start|>", "<pad>", "<s>", "\x00", "\u2028", "\r\n", "\t"]
texts = st.one_of(
    st.text(max_size=40),  # arbitrary unicode, control characters and the empty string included
    st.sampled_from(["", " ", "\n", "   \t  "]),
    st.lists(st.sampled_from(SPECIALS + ["a", "b", " "]), max_size=12).map("".join),
)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(batch=st.lists(texts, min_size=1, max_size=6), batch_size=st.integers(1, 4))
def test_encode_gives_one_finite_row_per_text_in_order(tiny_model, batch, batch_size):
    out = tiny_model.encode(batch, batch_size=batch_size)
    assert out.shape == (len(batch), tiny_model.config.embedding_dim) and np.isfinite(out).all()
    alone = np.stack([tiny_model.encode(t) for t in batch])  # order kept whatever the batching
    np.testing.assert_allclose(out, alone, atol=1e-4)


@FAST
@given(batch=st.lists(texts, min_size=1, max_size=4))
def test_decode_and_logit_lens_never_fail_on_text(tiny_model, batch):
    decoded = tiny_model.decode(batch, max_new_tokens=2)
    assert len(decoded) == len(batch) and all(isinstance(d, str) for d in decoded)
    lens = logit_lens(tiny_model, batch, top_k=1)
    assert len(lens) == len(batch)


def test_a_million_characters_is_cut_not_fatal(tiny_model):
    huge = "word " * 200_000
    assert tiny_model.encode(huge).shape == (tiny_model.config.embedding_dim,)
    assert isinstance(tiny_model.decode(huge, max_new_tokens=1), str)


@FAST
@given(bad=st.one_of(st.integers(), st.none(), st.binary(max_size=4), st.floats(), st.lists(st.integers(), max_size=2)))
def test_a_wrong_type_is_named(tiny_model, bad):
    for call in (tiny_model.encode, tiny_model.decode, partial(logit_lens, tiny_model)):
        with pytest.raises(TypeError, match="expects strings; item 1"):
            call(["fine", bad])


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]),
                              max_size=20), min_size=1, max_size=8),
       final_newline=st.booleans())
def test_text_file_reader_keeps_one_row_per_line(tmp_path_factory, lines, final_newline):
    from genembed.cli import UsageError, read_texts

    path = tmp_path_factory.mktemp("in") / "texts.txt"
    body = "\n".join(lines) + ("\n" if final_newline else "")
    path.write_bytes(body.encode("utf-8"))
    expected = [line.removesuffix("\r") for line in lines]
    if not final_newline and lines[-1] == "" and len(lines) > 0:
        expected = expected[:-1]  # "a\n" and "a\n" + "" are the same file
    if not expected:  # an empty file: the command stops, naming it
        with pytest.raises(UsageError, match="holds no texts"):
            read_texts([], path)
        return
    assert read_texts([], path) == expected


UNICODE = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(UNICODE, min_size=1, max_size=8))
def test_jsonl_reader_round_trips_any_text(tmp_path_factory, rows):
    import json

    from genembed.reader import TextFile

    path = tmp_path_factory.mktemp("in") / "rows.jsonl"
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in rows), encoding="utf-8")
    source = TextFile(path)
    assert len(source) == len(rows) and list(source) == rows


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=64), suffix=st.sampled_from([".txt", ".jsonl"]))
def test_any_bytes_give_rows_or_an_error_naming_the_line(tmp_path_factory, data, suffix):
    """Whatever a file holds, the reader returns its rows, one per line, or one GenembedError (a
    ValueError too) naming file:line."""
    from genembed import GenembedError
    from genembed.reader import TextFile

    path = tmp_path_factory.mktemp("in") / f"input{suffix}"
    path.write_bytes(data)
    try:
        rows = list(TextFile(path))
    except GenembedError as e:
        assert isinstance(e, ValueError)
        assert f"input{suffix}:" in str(e) and "\n" not in str(e)
    else:
        assert all(isinstance(r, str) for r in rows)
        lines = data.count(b"\n") + (not data.endswith(b"\n") if data else 0)
        assert len(rows) == lines  # row i is line i, in both formats


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=48), suffix=st.sampled_from([".txt", ".jsonl"]))
def test_the_cli_ends_in_rows_or_one_error_line_never_a_traceback(tiny_model, tmp_path_factory, capsys, data, suffix):
    import sys

    from genembed.checkpoint import save_checkpoint
    from genembed.cli import main

    folder = tmp_path_factory.mktemp("cli")
    ckpt = save_checkpoint(tiny_model, folder / "ckpt")
    path = folder / f"input{suffix}"
    path.write_bytes(data)
    argv = sys.argv
    sys.argv = ["genembed", "encode", "--input", str(path), "--model", str(ckpt), "--out", str(folder / "v.npy")]
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        sys.argv = argv
    err = capsys.readouterr().err
    assert done.value.code in (0, 2), err
    assert "Traceback" not in err
    if done.value.code == 2:
        lines = [line for line in err.splitlines() if line.strip() and "Loading weights" not in line]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    if done.value.code == 0:  # one row per line, the blank ones included (.txt) or refused (.jsonl)
        lines = data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n")
        assert np.load(folder / "v.npy").shape[0] == len(lines)


def brute_force_cost(lengths, batch_size, call_cost):
    """The cheapest way to cut sorted rows into consecutive batches, by trying every way (small inputs)."""
    if not lengths:
        return 0
    return min(size * lengths[0] + call_cost + brute_force_cost(lengths[size:], batch_size, call_cost)
               for size in range(1, min(batch_size, len(lengths)) + 1))


@FAST
@given(lengths=st.lists(st.integers(1, 300), min_size=1, max_size=9), batch_size=st.integers(1, 5),
       call_cost=st.integers(0, 600))
def test_the_batch_plan_is_the_cheapest_and_covers_every_row_once(lengths, batch_size, call_cost):
    from genembed.batching import plan_batches

    lengths = sorted(lengths, reverse=True)
    starts = plan_batches(lengths, batch_size, call_cost)
    ends = starts[1:] + [len(lengths)]
    assert starts[0] == 0 and all(0 < e - s <= batch_size for s, e in zip(starts, ends))
    cost = sum((e - s) * lengths[s] + call_cost for s, e in zip(starts, ends))
    assert cost == brute_force_cost(lengths, batch_size, call_cost)


def test_one_long_text_no_longer_pads_a_batch_of_short_ones():
    from genembed.batching import CALL_COST, plan_batches

    assert plan_batches([266] + [20] * 31, 32) == [0, 1]  # 266 + 31 x 20 positions, not 32 x 266
    assert plan_batches([20] * 100, 32) == [0, 32, 64, 96]  # equal lengths: full batches, as before
    assert plan_batches([266] + [20] * 31, 32, call_cost=100 * CALL_COST) == [0]

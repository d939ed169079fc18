"""Property-based tests (hypothesis): whatever text a user sends, encode / decode / logit_lens and
the CLI readers give one finite row per input in order, or a clear error naming the argument;
no internal error escapes."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    lens = tiny_model.logit_lens(batch, top_k=1)
    assert len(lens) == len(batch)


def test_a_million_characters_is_cut_not_fatal(tiny_model):
    huge = "word " * 200_000
    assert tiny_model.encode(huge).shape == (tiny_model.config.embedding_dim,)
    assert isinstance(tiny_model.decode(huge, max_new_tokens=1), str)


@FAST
@given(bad=st.one_of(st.integers(), st.none(), st.binary(max_size=4), st.floats(), st.lists(st.integers(), max_size=2)))
def test_a_wrong_type_is_named(tiny_model, bad):
    for call in (tiny_model.encode, tiny_model.decode, tiny_model.logit_lens):
        with pytest.raises(TypeError, match="expects strings; item 1"):
            call(["fine", bad])


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]),
                              max_size=20), min_size=1, max_size=8),
       final_newline=st.booleans())
def test_text_file_reader_keeps_one_row_per_line(tmp_path_factory, lines, final_newline):
    from genembed.cli import read_texts

    path = tmp_path_factory.mktemp("in") / "texts.txt"
    body = "\n".join(lines) + ("\n" if final_newline else "")
    path.write_bytes(body.encode("utf-8"))
    expected = [line.removesuffix("\r") for line in lines]
    if not final_newline and lines[-1] == "" and len(lines) > 0:
        expected = expected[:-1]  # "a\n" and "a\n" + "" are the same file
    assert read_texts([], path) == expected

"""The word lens (word_lens.py): an embedding's nearest vocabulary words in the teacher's space,
and the text the frozen LLM writes when asked about them."""
import numpy as np
import pytest


def test_vocabulary_words_are_single_whole_word_tokens(tiny_model):
    from genembed.word_lens import vocabulary_words

    tok = tiny_model.backbone.tokenizer
    words, ids = vocabulary_words(tok)
    assert words and words == sorted(set(words)) and len(words) == len(ids)
    assert "egg" in words and "sea" in words  # words of the corpus the tiny tokenizer learnt
    for word, token_id in zip(words, ids):
        assert tok.decode([token_id]).lower() == " " + word


class CountingTeacher:
    name, dim = "counting-teacher", 3

    def __init__(self):
        self.calls = 0

    def embed(self, texts, show_progress_bar=False):
        self.calls += 1
        return np.array([[len(t), t.count("e"), 1.0] for t in texts], dtype=np.float32)


def test_word_vectors_are_unit_length_and_computed_once(tmp_path, monkeypatch):
    from genembed.word_lens import word_vectors

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path))
    teacher = CountingTeacher()
    first = word_vectors(teacher, ["egg", "sea", "paris"])
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    again = word_vectors(teacher, ["egg", "sea", "paris"])
    assert teacher.calls == 1 and np.array_equal(first, again)
    word_vectors(teacher, ["egg", "sea"])  # another word list is another cache entry
    assert teacher.calls == 2


def test_nearest_words_rank_by_cosine():
    from genembed.word_lens import REQUEST, WordLens

    vectors = np.eye(4, dtype=np.float32)
    lens = WordLens(["egg", "sea", "paris", "poem"], vectors)
    query = np.array([[0.1, 0.0, 0.9, 0.3], [2.0, 1.0, 0.0, 0.0]], dtype=np.float32)  # not unit: normalised
    near = lens.nearest(query, k=2)
    assert [w for w, _ in near[0]] == ["paris", "poem"] and [w for w, _ in near[1]] == ["egg", "sea"]
    assert near[1][0][1] == pytest.approx(2 / np.sqrt(5), rel=1e-5)
    assert lens.requests(query, k=2) == [REQUEST.format("paris, poem"), REQUEST.format("egg, sea")]
    assert len(lens.nearest(query, k=10)[0]) == 4  # k larger than the vocabulary: all of it
    with pytest.raises(ValueError, match="k must be"):
        lens.nearest(query, k=0)
    with pytest.raises(ValueError, match="one vector per word"):
        WordLens(["egg"], vectors)


def test_decode_via_words_answers_the_request_of_the_nearest_words(tiny_model, tmp_path, monkeypatch):
    from genembed.generate import generate_batch
    from genembed.inspection import nearest_words
    from genembed.word_lens import REQUEST, WORDS_PER_TEXT, request_ids

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path))
    texts = ["how do I boil an egg", "write a poem about the sea"]
    near = nearest_words(tiny_model, texts, k=WORDS_PER_TEXT)
    assert len(near) == 2 and all(len(row) == WORDS_PER_TEXT for row in near)
    assert all(a[1] >= b[1] for row in near for a, b in zip(row, row[1:]))  # nearest first
    alone = nearest_words(tiny_model, texts[0], k=WORDS_PER_TEXT)
    assert [w for w, _ in alone] == [w for w, _ in near[0]]
    np.testing.assert_allclose([c for _, c in alone], [c for _, c in near[0]], atol=1e-5)
    requests = [REQUEST.format(", ".join(w for w, _ in row)) for row in near]
    expected = generate_batch(tiny_model.backbone, request_ids(tiny_model.backbone.tokenizer, requests), 6)[0]
    assert tiny_model.decode(texts, max_new_tokens=6) == expected
    assert tiny_model.decode(texts[1], max_new_tokens=6) == expected[1]
    with pytest.raises(ValueError, match="via must be one of"):
        tiny_model.decode(texts, via="telepathy")


def test_the_word_lens_refuses_embeddings_outside_the_teachers_space(tiny_backbone):
    from genembed.model import GenEmbed

    off = GenEmbed.create(tiny_backbone, embedding_dim=16, teacher="self")  # the self teacher is 32-d
    with pytest.raises(ValueError, match="16 dimensions and its teacher 'self' 32"):
        off.decode("paris", max_new_tokens=2)
    assert isinstance(off.decode("paris", max_new_tokens=2, via="soft-prompt"), str)


def test_inspect_shows_the_nearest_words(tiny_model, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from genembed.checkpoint import save_checkpoint
    from genembed.cli import app

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    ckpt = save_checkpoint(tiny_model, tmp_path / "ckpt")
    result = CliRunner().invoke(app, ["inspect", "paris", "--model", str(ckpt), "--words", "4",
                                      "--max-new-tokens", "2"])
    assert result.exit_code == 0, result.output
    shown = [line for line in result.output.splitlines() if line.startswith("words:")]
    assert len(shown) == 1 and shown[0].count(",") == 3
    result = CliRunner().invoke(app, ["decode", "paris", "--model", str(ckpt), "--via", "soft-prompt",
                                      "--max-new-tokens", "2"])
    assert result.exit_code == 0 and "decoded:" in result.output

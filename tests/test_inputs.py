from genembed.inputs import chat_wrapping, pad, positions, prompt_ids, response_ids


def test_prompt_keeps_template_and_instruction_when_text_is_cut(tiny_backbone):
    tok = tiny_backbone.tokenizer
    prefix, suffix = chat_wrapping(tok)
    assert prefix and suffix, "the chat template must wrap the text"
    long_text = "the sea is wide and blue and deep " * 50
    instruction_ids = tok("summarize the following passage: ", add_special_tokens=False)["input_ids"]
    [row] = prompt_ids(tok, [long_text], "summarize the following passage: ", max_text_tokens=7)
    assert len(row) == len(prefix) + len(instruction_ids) + 7 + len(suffix)
    assert row[: len(prefix)] == prefix and row[-len(suffix):] == suffix
    assert row[len(prefix): len(prefix) + len(instruction_ids)] == instruction_ids


def test_left_padding_masks_and_positions():
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0, side="left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert positions(mask).tolist() == [[0, 1, 2], [0, 0, 0]]
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0, side="right")
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_response_ids_end_with_eos_unless_cut(tiny_backbone):
    tok = tiny_backbone.tokenizer
    short, cut = response_ids(tok, ["paris", "the sea is wide and blue and deep " * 10], max_tokens=6)
    assert short[-1] == tok.eos_token_id
    assert len(cut) == 6 and cut[-1] != tok.eos_token_id


def test_a_text_file_keeps_blank_lines_and_a_jsonl_file_refuses_them(tmp_path):
    """Row i is line i in both formats: a blank line of a .txt is the empty text; one of a .jsonl is an
    error naming the file and line (skipped, it shifted every later row off its line)."""
    import pytest

    from genembed.jsonl import JsonlError, numbered_rows
    from genembed.reader import TextFile

    txt = tmp_path / "t.txt"
    txt.write_text("a\n\nb\n")
    assert list(TextFile(txt)) == ["a", "", "b"]
    for blank in ("\n", "  \t\n", "\r\n"):
        rows = tmp_path / "rows.jsonl"
        rows.write_text('{"q": "a"}\n' + blank + '{"q": "b"}\n')
        with pytest.raises(JsonlError, match=r"rows\.jsonl:2: blank line .*\{\"q\": \"\"\}"):
            len(TextFile(rows, "q"))
        assert [n for n, _ in numbered_rows(rows)] == [1, 3]  # other readers (an index's line ids) skip it
    rows.write_text('{"q": "a"}\n{"q": ""}\n{"q": "b"}')
    assert list(TextFile(rows, "q")) == ["a", "", "b"]


def test_a_missing_file_and_a_folder_are_named_for_what_they_are(tmp_path):
    import pytest

    from genembed import GenembedError
    from genembed.reader import TextFile

    with pytest.raises(GenembedError, match="is a folder; a file of texts is expected"):
        TextFile(tmp_path)
    with pytest.raises(ValueError, match="input file not found"):  # a ValueError too, as it always was
        TextFile(tmp_path / "none.txt")

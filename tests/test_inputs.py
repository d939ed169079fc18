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

"""Parity with the official llm2vec-gen code (0.1.3) on the same weights, and its checkpoint layout.

tests/fixtures/official/ was written by scripts/official_fixture.py in a side environment with the
official package: an official-layout folder around the tiny test llama (2 thought + 3 compression
tokens, seeded values) saved by the official code itself, and what the official code computed from
it (docs/official-format.md). genembed reads the folder and must reproduce those numbers."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import genembed
from genembed import backends
from genembed.checkpoint import CheckpointError
from genembed.generate import greedy_from_embeddings
from genembed.inputs import official_response_ids, pad
from genembed.train import batch_loss

FIXTURE = Path(__file__).parent / "fixtures" / "official"
META = json.loads((FIXTURE / "expected.json").read_text())
EXPECTED = load_file(str(FIXTURE / "expected.safetensors"))
TEXTS = META["texts"]


@pytest.fixture(scope="module")
def official():
    return genembed.load(FIXTURE / "model")


def test_the_folder_loads_with_its_layout_and_tokens(official):
    c = official.config
    assert (c.input_layout, c.decoder) == ("official", "soft-prompt")
    assert (c.num_thought_tokens, c.num_compression_tokens, c.embedding_dim) == (2, 3, 24)
    assert c.instructions["query"] == META["instructions"]["query"]


@pytest.mark.parametrize("name", ["query", "document", "none"])
def test_input_ids_token_for_token(official, name):
    instruction = META["instructions"][name]
    n = official.config.num_thought_tokens + official.config.num_compression_tokens
    rows = official.token_rows(TEXTS, instruction)
    for i, row in enumerate(rows):  # the official ids end with the n special-token ids; genembed appends embeddings
        expected = EXPECTED[f"encode/{name}/single/{i}/input_ids"].tolist()
        assert row == expected[:-n] and expected[-n:] == META["special_token_ids"], i
    assert len(rows[3]) + n == 512  # the long text is cut so that the row, special tokens included, holds 512


@pytest.mark.parametrize("name", ["query", "document", "none"])
def test_embeddings_and_soft_prompts_within_1e5(official, name):
    instruction = META["instructions"][name]
    emb = official.encode(TEXTS, instruction=instruction)
    np.testing.assert_allclose(emb, EXPECTED[f"encode/{name}/batch/embedding"].numpy(), atol=1e-5, rtol=0)
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(official.encode(text, instruction=instruction),
                                   EXPECTED[f"encode/{name}/single/{i}/embedding"].numpy(), atol=1e-5, rtol=0)
    ids, mask = official.tokenize(TEXTS, instruction)
    with torch.no_grad():
        soft, _ = official(ids, mask)
    torch.testing.assert_close(soft, EXPECTED[f"encode/{name}/batch/soft_prompt"], atol=1e-5, rtol=0)
    if name == "query":  # the named instruction is the official one
        np.testing.assert_allclose(official.encode_query(TEXTS), emb, atol=1e-6)


def test_greedy_decode_gives_the_official_ids(official):
    for case in META["decode"]:
        soft = EXPECTED[f"encode/{case['instruction']}/single/{case['text_index']}/soft_prompt"][None]
        expected = EXPECTED[f"decode/{META['decode'].index(case)}/token_ids"].tolist()
        for cache in (True, False):
            assert greedy_from_embeddings(official.backbone, soft, len(expected), use_cache=cache)[0] == expected
        ids, mask = official.tokenize([TEXTS[case["text_index"]]], META["instructions"][case["instruction"]])
        with torch.no_grad():
            own = official(ids, mask)[0]  # genembed's own soft prompt decodes to the same ids
        assert greedy_from_embeddings(official.backbone, own, len(expected))[0] == expected
    text = official.decode(TEXTS[0], max_new_tokens=4)  # the default decoder of a published model: the soft prompt
    assert text == official.decode(TEXTS[0], max_new_tokens=4, via="soft-prompt")


def test_the_onnx_backend_gives_the_official_embeddings_and_ids(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path))
    monkeypatch.setattr(backends, "_runtimes", type(backends._runtimes)())  # this export goes with tmp_path
    fast = genembed.load(FIXTURE / "model", backend="onnx")
    for name in META["instructions"]:
        np.testing.assert_allclose(fast.encode(TEXTS, instruction=META["instructions"][name]),
                                   EXPECTED[f"encode/{name}/batch/embedding"].numpy(), atol=1e-5, rtol=0)
    for i, case in enumerate(META["decode"]):
        ids, mask = fast.tokenize([TEXTS[case["text_index"]]], META["instructions"][case["instruction"]])
        with torch.no_grad():
            soft = fast(ids, mask)[0]
        expected = EXPECTED[f"decode/{i}/token_ids"].tolist()
        assert greedy_from_embeddings(fast.backbone, soft, len(expected), lm=fast.runtime.lm)[0] == expected


def test_the_training_losses_equal_the_official_ones(official):
    """One batch through the official collator, EncoderDecoderModel and compute_mse_loss gave these losses;
    genembed's losses on the same rows (its official layout: stripped queries, the collator's targets)
    must give them too."""
    train = META["train"]
    tok = official.backbone.tokenizer
    queries = official.token_rows([r["question"].strip() for r in train["rows"]], "")
    n = official.config.num_thought_tokens + official.config.num_compression_tokens
    for row, ids in zip(queries, train["query_input_ids"]):
        assert row == [i for i in ids if i != tok.pad_token_id][:-n]
    responses = official_response_ids(tok, [r["answer"] for r in train["rows"]], 512)
    for row, ids in zip(responses, train["answer_input_ids"]):
        assert row == [i for i in ids if i != tok.pad_token_id]
    with torch.no_grad():
        total, rec, align = batch_loss(official, queries, responses, EXPECTED["train/teacher"], w_rec=1.0, w_align=1.0)
    assert float(rec) == pytest.approx(train["reconstruction_loss"], abs=1e-5)
    assert float(align) == pytest.approx(train["alignment_mse_loss"], abs=1e-5)
    assert float(total) == pytest.approx(train["total_loss"], abs=1e-5)


def test_a_published_model_works_everywhere_a_genembed_one_does(official, tmp_path):
    from genembed.index import Index, build_index
    from genembed.inspection import inspect

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    build_index(str(FIXTURE / "model"), corpus, tmp_path / "idx", show_progress_bar=False)
    hits = Index.open(tmp_path / "idx").search([TEXTS[1]], k=2, instruction="document")[0]
    assert hits[0].id == 1
    item = inspect(official, [TEXTS[0]], max_new_tokens=3)[0]
    assert len(item.logit_lens) == 3 and item.words is None  # no teacher known: no word lens, the soft prompt
    assert official.similarity(official.encode(TEXTS[:2]), official.encode(TEXTS[:2])).shape == (2, 2)


def _copy(tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(FIXTURE / "model", folder)
    shutil.copytree(FIXTURE / "backbone", tmp_path / "backbone")  # run_config says ../backbone
    return folder


@pytest.mark.parametrize("damage,match", [
    (lambda f: (f / "alignment_mlp").unlink(), "alignment_mlp is missing"),
    (lambda f: (f / "encoder" / "adapter_model.safetensors").write_bytes(b"\0" * 64), "adapter_model.safetensors is corrupt"),
    (lambda f: (f / "reconstruction_mlp").write_bytes((f / "reconstruction_mlp").read_bytes()[:300]), "reconstruction_mlp is corrupt"),
    (lambda f: torch.save({"state_dict": {}, "config": {}, "code": Path("x")}, f / "alignment_mlp"), "alignment_mlp is corrupt or unsafe"),
    (lambda f: (f / "run_config.yml").write_text("model_name_or_path: [unclosed"), "run_config.yml is corrupt"),
    (lambda f: _edit_json(f / "encoder" / "adapter_config.json", peft_type="LORA"), "peft_type 'LORA'"),
    (lambda f: _edit_json(f / "encoder_decoder_config.json", save_decoder=True), "save_decoder"),
    (lambda f: _edit_json(f / "encoder_decoder_config.json", encoding_mode="mean"), "encoding_mode 'mean'"),
    (lambda f: _edit_json(f / "encoder" / "adapter_config.json", token_indices=[420, 421, 422, 423, 419]), "do not match"),
    (lambda f: _edit_mlp(f / "alignment_mlp", pooling_mode="mean_linear"), "pooling_mode 'mean_linear'"),
])
def test_bad_folders_are_refused_naming_the_file(tmp_path, damage, match):
    folder = _copy(tmp_path)
    damage(folder)
    with pytest.raises(CheckpointError, match=match):
        genembed.load(folder)


def test_a_backbone_of_another_shape_or_vocabulary_is_refused(tmp_path, other_backbone_path, tiny_backbone_path):
    folder = _copy(tmp_path)
    with pytest.raises(CheckpointError, match="does not match backbone|width"):
        genembed.load(folder, backbone=other_backbone_path)
    with pytest.raises(CheckpointError, match="adds"):  # the same vocabulary, but its tokenizer adds no BOS
        genembed.load(folder, backbone=tiny_backbone_path)


def test_the_cli_refuses_a_bad_folder_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from genembed.cli import app

    folder = _copy(tmp_path)
    (folder / "alignment_mlp").unlink()
    result = CliRunner().invoke(app, ["encode", "paris", "--model", str(folder), "--out", str(tmp_path / "v.npy")])
    assert result.exit_code != 0 and "alignment_mlp is missing" in str(result.exception or result.output)


def _edit_json(path: Path, **fields):
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def _edit_mlp(path: Path, **config):
    saved = torch.load(path, weights_only=True)
    saved["config"].update(config)
    torch.save(saved, path)


def test_export_writes_a_folder_that_reads_back_to_the_same_model(official, tmp_path):
    from genembed.official import write_official

    out = write_official(official, tmp_path / "exported", backbone_path=str((FIXTURE / "backbone").resolve()))
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"run_config.yml", "encoder_decoder_config.json", "reconstruction_mlp", "alignment_mlp",
            "encoder/adapter_config.json", "encoder/adapter_model.safetensors", "encoder/config.json"} <= names
    again = genembed.load(out)
    for name, tensor in official.state_dict().items():  # every trained tensor written as it was
        torch.testing.assert_close(again.state_dict()[name], tensor, atol=0, rtol=0)
    np.testing.assert_allclose(again.encode(TEXTS), official.encode(TEXTS), atol=1e-6)  # (prefix caches differ)
    for name in ("reconstruction_mlp", "alignment_mlp"):  # weights only: loadable without executing code
        assert set(torch.load(out / name, weights_only=True)) == {"state_dict", "config"}


SMOLLM_HUB = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_export_names_the_backbone_by_its_hub_id_never_by_a_cache_path(official, tmp_path, monkeypatch):
    """A model on the bundled alias runs on its GGUF de-quantised into genembed's cache: the exported folder
    names the model the alias stands for on the hub (what the official code loads for a user who is online),
    never that machine-local folder, nor a snapshot folder of the Hugging Face cache; an explicit
    backbone_path still wins."""
    from genembed.backbone import ALIASES, cache_root, gguf_digest
    from genembed.data import package_file
    from genembed.official import write_official

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    dequantised = cache_root() / "backbones" / gguf_digest(package_file(*ALIASES["smollm2-135m-instruct"]))
    for name in ("smollm2-135m-instruct", str(dequantised)):
        with pytest.warns(UserWarning, match="Q4_1.*--backbone-path"):  # the hub's weights are not quantised
            out = write_official(_renamed(official, name), tmp_path / "alias")
        assert _names_of_backbone(out) == {SMOLLM_HUB}, name
    snapshot = tmp_path / "hf" / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "snapshots" / "0123abc"
    for name in (SMOLLM_HUB, str(snapshot)):
        assert _names_of_backbone(write_official(_renamed(official, name), tmp_path / "hub")) == {SMOLLM_HUB}, name
    explicit = str((FIXTURE / "backbone").resolve())
    out = write_official(_renamed(official, "smollm2-135m-instruct"), tmp_path / "explicit", backbone_path=explicit)
    assert _names_of_backbone(out) == {explicit}


@pytest.mark.parametrize("name", ["cache", "gguf"])
def test_export_refuses_a_backbone_it_cannot_name_for_another_machine(official, tmp_path, monkeypatch, name):
    from genembed.backbone import cache_root
    from genembed.official import write_official

    monkeypatch.setenv("GENEMBED_CACHE", str(tmp_path / "cache"))
    local = {"cache": cache_root() / "backbones" / ("0" * 64), "gguf": tmp_path / "my-model.Q8_0.gguf"}[name]
    if name == "cache":  # the de-quantised copy of a GGUF genembed knows no hub id for
        shutil.copytree(FIXTURE / "backbone", local)
    with pytest.raises(CheckpointError, match=f"backbone '{local}'.*--backbone-path"):
        write_official(_renamed(official, str(local)), tmp_path / "exported")
    assert not (tmp_path / "exported").exists()


def _renamed(model, name: str):
    """`model` with its backbone recorded under another name (the same weights)."""
    import dataclasses

    from genembed.model import GenEmbed

    backbone = dataclasses.replace(model.backbone, name=name)
    renamed = GenEmbed(dataclasses.replace(model.config, backbone=name), backbone)
    renamed.load_state_dict(model.state_dict())
    return renamed


def _names_of_backbone(folder: Path) -> set:
    """What an exported folder names as its backbone: run_config.yml's and the adapter config's."""
    import yaml

    return {yaml.safe_load((folder / "run_config.yml").read_text())["model_name_or_path"],
            json.loads((folder / "encoder" / "adapter_config.json").read_text())["base_model_name_or_path"]}


def test_a_chat_layout_checkpoint_is_refused_by_export_with_the_reason(tiny_model, tmp_path):
    from genembed.official import write_official

    with pytest.raises(ValueError, match="chat layout.*--input-layout official"):
        write_official(tiny_model, tmp_path / "x")


def test_training_in_the_official_layout_gives_an_exportable_model(tiny_backbone_path, tiny_responses, tmp_path):
    from genembed.official import readable_by_transformers4, write_official
    from genembed.train import TrainConfig, train

    model = train(TrainConfig(responses=str(tiny_responses), out_dir=str(tmp_path / "run"), backbone=tiny_backbone_path,
                              teacher="self", num_thought_tokens=1, num_compression_tokens=2, batch_size=2, steps=2,
                              warmup_steps=1, ridge_examples=4, max_query_tokens=24, w_rec=1.0,
                              input_layout="official"), show_progress_bar=False)
    assert model.config.input_layout == "official"
    rows = model.token_rows(["  paris  " * 30], "")
    assert len(rows[0]) + 3 == 24  # the whole row, special tokens included, holds max_query_tokens
    trained = genembed.load(tmp_path / "run" / "model")
    with pytest.raises(ValueError, match="rope_parameters.*10000"):  # a 5.x-written backbone folder: 4.56 misreads it
        write_official(trained, tmp_path / "exported")
    copy = shutil.copytree(tiny_backbone_path, tmp_path / "backbone-4x")
    readable_by_transformers4(copy)  # what export does to genembed's own de-quantised GGUF folders
    out = write_official(trained, tmp_path / "exported", backbone_path=str(copy))
    assert json.loads((copy / "config.json").read_text())["rope_theta"] == trained.backbone.config.rope_parameters["rope_theta"]
    np.testing.assert_allclose(genembed.load(out).encode(["paris"]), model.encode(["paris"]), atol=1e-6)


def test_serve_and_eval_on_a_published_model(official, tmp_path, monkeypatch):
    import httpx

    from genembed.eval import run
    from genembed.eval.methods import Student
    from genembed.serve import BackgroundServer, create_app
    from test_decoding_eval import WordTeacher, _task

    with BackgroundServer(create_app(official, max_wait_ms=0)) as server:
        reply = httpx.post(f"{server.url}/v1/embeddings", json={"input": TEXTS[:2]}, timeout=60).json()
        said = httpx.post(f"{server.url}/v1/decode", json={"input": TEXTS[0], "max_new_tokens": 3}, timeout=60).json()
    np.testing.assert_allclose([d["embedding"] for d in reply["data"]], official.encode(TEXTS[:2]), atol=1e-5)
    assert said["data"][0]["text"] == official.decode(TEXTS[0], max_new_tokens=3)
    task = _task(tmp_path / "cache")
    task._teachers["unknown"] = WordTeacher()
    monkeypatch.setattr(run, "TASKS", {"decoding": lambda: task})
    row = run.evaluate([Student(official, "official")], ["decoding"], tmp_path, cost_texts=2)["methods"]["official"]
    assert row["decoding"]["decoder"] == "soft-prompt" and np.isfinite(row["decoding"]["gap other"])
    with pytest.raises(ValueError, match="teacher is not known"):
        official.decode(TEXTS[0], via="words")


def test_the_official_package_loads_an_exported_folder_and_computes_the_same(official, tmp_path):
    """The other direction, checked by the official code itself (llm2vec-gen 0.1.3 on transformers 4.56 in
    .venv-official, which scripts/test.sh builds): it loads what `genembed export` writes and gives genembed's
    embeddings and greedy ids."""
    from genembed.official import write_official

    out = write_official(official, tmp_path / "exported", backbone_path=str((FIXTURE / "backbone").resolve()))
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and len(config["additional_special_tokens"]) == 5
    embeddings, report = _official_encode(out, [META["instructions"]["query"] + t for t in TEXTS], tmp_path)
    np.testing.assert_allclose(embeddings, official.encode(TEXTS, instruction="query"), atol=1e-5, rtol=0)
    ids_in, mask = official.tokenize(TEXTS[:1], META["instructions"]["query"])
    with torch.no_grad():
        soft = official(ids_in, mask)[0]
    assert greedy_from_embeddings(official.backbone, soft, 12)[0] == report["decode_ids"][:12]


def test_an_official_folder_on_a_backbone_without_a_pad_token_exports_with_one(tmp_path):
    """A backbone whose tokenizer has no pad token (Llama 3.x): the official trainer gives it EOS as pad,
    and so does genembed when it loads the backbone. The export must keep a pad token, or the official
    encode() of texts of different lengths (one padded batch) stops: "Asking to pad but the tokenizer does
    not have a padding token"."""
    from genembed.official import write_official

    folder = _copy(tmp_path)
    _drop_pad_token(tmp_path / "backbone")
    model = genembed.load(folder)
    assert model.backbone.tokenizer.pad_token == model.backbone.tokenizer.eos_token
    out = write_official(model, tmp_path / "exported")
    assert json.loads((out / "tokenizer_config.json").read_text())["pad_token"] == model.backbone.tokenizer.eos_token
    texts = ["paris", TEXTS[0] + " " + TEXTS[2] * 6, TEXTS[3]]  # 1, about 60 and 500 tokens: one padded batch
    embeddings, _ = _official_encode(out, [META["instructions"]["document"] + t for t in texts], tmp_path)
    np.testing.assert_allclose(embeddings, model.encode(texts, instruction="document"), atol=1e-5, rtol=0)


def _drop_pad_token(backbone: Path) -> None:
    config = json.loads((backbone / "tokenizer_config.json").read_text())
    config.pop("pad_token")
    (backbone / "tokenizer_config.json").write_text(json.dumps(config))
    special = json.loads((backbone / "special_tokens_map.json").read_text())
    special.pop("pad_token")
    (backbone / "special_tokens_map.json").write_text(json.dumps(special))


def _official_encode(folder: Path, texts: list[str], tmp_path: Path, decode_tokens: int = 12):
    """(the embeddings, the report) the official package computes from `folder` for `texts` (instructions
    already prefixed), encoded as one left-padded batch by scripts/official_load_check.py in .venv-official."""
    import subprocess

    python = Path(__file__).parent.parent / ".venv-official" / "bin" / "python"
    assert python.exists(), "the official package's side venv is missing: run bash scripts/official_env.sh"
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    script = Path(__file__).parent.parent / "scripts" / "official_load_check.py"
    done = subprocess.run([str(python), str(script), str(folder), "--texts-json", str(tmp_path / "texts.json"),
                           "--out", str(tmp_path / "official.npy"), "--decode-tokens", str(decode_tokens)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(tmp_path / "official.npy"), json.loads((tmp_path / "official.npy.json").read_text())


def test_a_target_equal_to_the_pad_id_is_not_scored_in_the_official_layout(official):
    """The official collator turns every label equal to the pad id into -100. When pad is BOS (SmolLM2 under
    the official code), the BOS each target starts with is read but not predicted; genembed scored it
    until the benchmark on one shared checkpoint showed the gap (4.4537 vs 4.1660)."""
    tok = official.backbone.tokenizer
    queries = official.token_rows(["how do I boil an egg", "paris"], "")
    responses = official_response_ids(tok, ["boil it for nine minutes", "paris is in france"], 512)
    assert all(r[0] == tok.bos_token_id for r in responses)
    targets = torch.zeros(2, official.config.embedding_dim)
    saved, tok.pad_token = tok.pad_token, tok.bos_token  # pad = BOS, as SmolLM2's official tokenizer has it
    try:
        rec, expected, everything = _losses_with_pad_as_bos(official, queries, responses, targets)
    finally:
        tok.pad_token = saved
    assert float(rec) == pytest.approx(float(expected), abs=1e-6) and abs(float(everything) - float(expected)) > 1e-3


def _losses_with_pad_as_bos(official, queries, responses, targets):
    from genembed.losses import reconstruction_loss

    tok = official.backbone.tokenizer
    with torch.no_grad():
        _, rec, _ = batch_loss(official, queries, responses, targets, w_rec=1.0, w_align=1.0)
        soft = official(*official.tokenize(["how do I boil an egg", "paris"], ""))[0]
        r_ids, r_mask = pad(responses, tok.pad_token_id, side="right")
        lm = official.backbone.model
        expected = reconstruction_loss(lm, soft, r_ids, r_mask, target_mask=(r_ids != tok.bos_token_id).long())
        everything = reconstruction_loss(lm, soft, r_ids, r_mask)
    return rec, expected, everything

"""LLM2Vec teachers (genembed.teachers.LLM2VecTeacher, genembed.bidirectional): parity with the llm2vec
package on tests/fixtures/llm2vec/ (written by scripts/llm2vec_fixture.py in .venv-llm2vec), bidirectional
attention checked against attention computed by hand, and one error per kind of bad input."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from genembed import bidirectional
from genembed.errors import GenembedError
from genembed.teachers import (CLSTeacher, LLM2VecTeacher, SelfTeacher, TeacherError, is_llm2vec_spec,
                               load_teacher)

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "llm2vec"
SIDE_VENV = ROOT / ".venv-llm2vec" / "bin" / "python"


@pytest.fixture(scope="module")
def reference():
    return json.loads((FIXTURE / "embeddings.json").read_text())


@pytest.fixture()
def teacher_copy(tmp_path):
    """A writable copy of the fixture's folders."""
    for name in ("base", "mntp", "simcse"):
        shutil.copytree(FIXTURE / name, tmp_path / name)
    return tmp_path


# -- parity with llm2vec 0.2.3 -----------------------------------------------------------------
@pytest.mark.parametrize("key", ["mntp+simcse/mean", "mntp+simcse/weighted_mean", "mntp+simcse/last_token",
                                 "mntp+simcse/eos_token", "mntp/mean", "base/mean"])
def test_embeddings_match_the_llm2vec_package(reference, key):
    parts, mode = key.split("/")
    spec = "+".join(str(FIXTURE / part) for part in parts.split("+"))
    if mode == "mean":
        teacher = load_teacher(("llm2vec:" if parts == "base" else "") + spec)  # the spec alone decides
        assert isinstance(teacher, LLM2VecTeacher)
    else:
        teacher = LLM2VecTeacher(spec, pooling_mode=mode)
    got = teacher.embed(reference["texts"], batch_size=4)
    want = np.asarray(reference["embeddings"][key], dtype=np.float32)
    assert got.dtype == np.float32 and got.shape == want.shape == (len(reference["texts"]), teacher.dim)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_each_adapter_changes_the_embeddings_and_nothing_is_normalised(reference):
    vectors = {k: np.asarray(v) for k, v in reference["embeddings"].items()}
    assert np.abs(vectors["mntp/mean"] - vectors["base/mean"]).max() > 0.1
    assert np.abs(vectors["mntp+simcse/mean"] - vectors["mntp/mean"]).max() > 0.1
    assert np.abs(np.linalg.norm(vectors["mntp+simcse/mean"], axis=1) - 1).max() > 0.5


def test_the_settings_come_from_llm2vec_config_and_the_long_text_is_cut(reference):
    teacher = LLM2VecTeacher(f"{FIXTURE / 'mntp'}+{FIXTURE / 'simcse'}")
    assert (teacher.pooling_mode, teacher.max_length, teacher.doc_max_length) == ("mean", 64, 16)
    longest = max(reference["texts"], key=len)
    assert len(teacher._cut(longest)[0].split()) < len(longest.split())
    # a text's vector does not depend on its batch-mates (left padding, padding masked out)
    alone = np.stack([teacher.embed([t])[0] for t in reference["texts"]])
    np.testing.assert_allclose(alone, teacher.embed(reference["texts"], batch_size=6), atol=2e-5, rtol=0)


def test_a_plain_tensor_pickle_adapter_loads_like_safetensors(teacher_copy, reference):
    from safetensors.torch import load_file

    mntp = teacher_copy / "mntp"
    torch.save(load_file(str(mntp / "adapter_model.safetensors")), mntp / "adapter_model.bin")
    (mntp / "adapter_model.safetensors").unlink()
    got = LLM2VecTeacher(str(mntp)).embed(reference["texts"])
    np.testing.assert_allclose(got, np.asarray(reference["embeddings"]["mntp/mean"]), atol=1e-5, rtol=0)


# -- which specs are LLM2Vec ---------------------------------------------------------------------
def test_spec_recognition(tiny_backbone_path):
    assert is_llm2vec_spec("llm2vec:" + tiny_backbone_path)
    assert is_llm2vec_spec(str(FIXTURE / "mntp"))  # adapter_config.json
    assert is_llm2vec_spec(str(FIXTURE / "simcse"))  # llm2vec_config.json
    assert is_llm2vec_spec("McGill-NLP/LLM2Vec-Meta-Llama-3-8B-Instruct-mntp+McGill-NLP/LLM2Vec-x-simcse")
    assert is_llm2vec_spec("McGill-NLP/LLM2Vec-Sheared-LLaMA-mntp")
    for other in ("self", "all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", tiny_backbone_path,
                  "McGill-NLP/LLM2Vec-Gen-Qwen3-8B", "cls:BAAI/bge-m3-unsupervised"):
        assert not is_llm2vec_spec(other), other


def test_load_teacher_opens_each_kind_a_spec_names(tiny_backbone):
    """Every kind of spec gives a teacher of its kind, down to load_teacher's last case: a sentence-transformers
    name (here the bundled MiniLM alias)."""
    from genembed.teachers import SentenceTransformerTeacher

    minilm = load_teacher("all-minilm-l6-v2")
    assert isinstance(minilm, SentenceTransformerTeacher) and minilm.embed(["an egg"]).shape == (1, minilm.dim)
    assert isinstance(load_teacher("self", tiny_backbone), SelfTeacher)
    assert isinstance(load_teacher(f"{FIXTURE / 'mntp'}+{FIXTURE / 'simcse'}"), LLM2VecTeacher)


def test_self_teacher_is_unchanged(tiny_backbone):
    teacher = load_teacher("self", tiny_backbone)
    assert isinstance(teacher, SelfTeacher)
    assert np.allclose(np.linalg.norm(teacher.embed(["how do I boil an egg"]), axis=1), 1, atol=1e-5)


# -- bad input: one error each, naming the file or part ------------------------------------------------
def test_an_adapter_over_a_base_of_other_shapes(teacher_copy, other_backbone_path):
    config_path = teacher_copy / "mntp" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = other_backbone_path  # hidden 48, the adapter was made for 32
    config_path.write_text(json.dumps(config))
    with pytest.raises(TeacherError, match=r"adapter_model\.safetensors: its weights do not fit base model .*size mismatch") as error:
        load_teacher(str(teacher_copy / "mntp"))
    assert "\n" not in str(error.value) and isinstance(error.value, (GenembedError, ValueError))


def test_an_adapter_whose_modules_the_base_lacks(teacher_copy):
    from safetensors.torch import load_file, save_file

    path = teacher_copy / "simcse" / "adapter_model.safetensors"
    weights = load_file(str(path))
    save_file({k.replace("layers.0.", "layers.7."): v for k, v in weights.items()}, str(path))
    with pytest.raises(TeacherError, match=r"simcse/adapter_model\.safetensors: \d+ adapter weights do not match"):
        LLM2VecTeacher(f"{teacher_copy / 'mntp'}+{teacher_copy / 'simcse'}")


def test_a_family_without_a_bidirectional_implementation(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50).save_pretrained(tmp_path / "gpt2")
    (tmp_path / "gpt2" / "llm2vec_config.json").write_text('{"pooling_mode": "mean"}')
    with pytest.raises(bidirectional.BidirectionalError,
                       match=r"^teacher base model .*/gpt2: model_type 'gpt2' has no bidirectional implementation"):
        load_teacher(str(tmp_path / "gpt2"))
    with pytest.raises(bidirectional.BidirectionalError, match="'gpt2'"):
        bidirectional.check_family(GPT2Config(), "x")


@pytest.mark.parametrize("second, message", [
    ("", r"the second part \(the adapter after '\+'\) is empty"),
    ("{root}/simcsee", r"the second part '.*/simcsee' is not a folder"),
    ("{root}/base", r"the second part '.*/base' is not a PEFT adapter \(no adapter_config\.json\)"),
    ("simcsee", r"the second part 'simcsee' is not a local folder, and the hub repo cannot be read"),
])
def test_a_missing_or_misspelt_second_part(second, message, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(TeacherError, match=message):
        load_teacher(f"{FIXTURE / 'mntp'}+{second.format(root=FIXTURE)}")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_adapter_runs_nothing(teacher_copy):
    mntp, marker = teacher_copy / "mntp", teacher_copy / "executed"
    (mntp / "adapter_model.safetensors").unlink()
    with open(mntp / "adapter_model.bin", "wb") as f:
        pickle.dump({"base_model.model.layers.0.self_attn.q_proj.lora_A.weight": _Payload(marker)}, f)
    with pytest.raises(TeacherError, match=r"mntp/adapter_model\.bin: a pickled adapter that weights-only loading refuses"):
        load_teacher(str(mntp))
    assert not marker.exists()


def test_an_unknown_pooling_mode(teacher_copy):
    path = teacher_copy / "simcse" / "llm2vec_config.json"
    path.write_text(json.dumps({"pooling_mode": "max"}))
    with pytest.raises(TeacherError, match=r"simcse/llm2vec_config\.json: unknown pooling_mode 'max'"):
        load_teacher(f"{teacher_copy / 'mntp'}+{teacher_copy / 'simcse'}")


# -- the cls: encoder teacher ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    from genembed.testing import build_tiny_backbone

    folder = tmp_path_factory.mktemp("encoder")
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_backbone(tmp_path_factory.mktemp("tok")))
    torch.manual_seed(0)
    XLMRobertaModel(XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, pad_token_id=tokenizer.pad_token_id,
                                     max_position_embeddings=80)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_cls_teacher_reads_the_first_state_unnormalised(tiny_encoder):
    from transformers import AutoModel, AutoTokenizer

    texts = ["how do I boil an egg", "paris"]
    teacher = load_teacher(f"cls:{tiny_encoder}")
    assert isinstance(teacher, CLSTeacher) and teacher.dim == 16
    tok, model = AutoTokenizer.from_pretrained(tiny_encoder), AutoModel.from_pretrained(tiny_encoder).eval()
    with torch.no_grad():
        want = [model(**tok([t], return_tensors="pt")).last_hidden_state[0, 0].numpy() for t in texts]
    np.testing.assert_allclose(teacher.embed(texts), np.stack(want), atol=1e-5, rtol=0)
    assert np.abs(np.linalg.norm(want, axis=1) - 1).max() > 0.1


@pytest.mark.parametrize("pooling, message", [
    ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, r"pools by mean_tokens, not by the CLS token"),
    ({"word_embedding_dimension": 16}, r"names no pooling mode, so the encoder's pooling is unknown"),
])
def test_an_encoder_whose_pooling_is_not_cls(tiny_encoder, tmp_path, pooling, message):
    folder = tmp_path / "encoder"
    shutil.copytree(tiny_encoder, folder)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(TeacherError, match=r"1_Pooling/config\.json: " + message):
        load_teacher(f"cls:{folder}")


# -- bidirectional attention -----------------------------------------------------------------------
def _tiny(model_type: str, implementation: str = "sdpa"):
    from transformers import AutoConfig, AutoModel

    kwargs = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, head_dim=8)
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, **kwargs)
    return AutoModel.from_config(config, attn_implementation=implementation).eval()


def _batch():
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 64, (2, 7), generator=gen)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, :3] = 0  # left padding
    return ids, mask


@pytest.mark.parametrize("model_type", sorted(bidirectional.FAMILIES))
def test_every_family_attends_both_ways_and_sdpa_equals_eager(model_type):
    ids, mask = _batch()
    with torch.no_grad():
        causal = _tiny(model_type)(input_ids=ids, attention_mask=mask).last_hidden_state
        sdpa = bidirectional.make_bidirectional(_tiny(model_type))
        eager = bidirectional.make_bidirectional(_tiny(model_type, "eager"))
        both = bidirectional.forward(sdpa, ids, mask)
        changed = ids.clone()
        changed[:, -1] = 1
        later = bidirectional.forward(sdpa, changed, mask)
        np.testing.assert_allclose(both[:, 3:], bidirectional.forward(eager, ids, mask)[:, 3:], atol=1e-5)
    # the first token sees the last one now, and did not before
    assert (later[:, 3] - both[:, 3]).abs().max() > 1e-3
    assert (causal[:, 3:-1] - both[:, 3:-1]).abs().max() > 1e-3


@pytest.mark.parametrize("model_type", ["qwen3", "llama"])
def test_attention_equals_full_attention_computed_by_hand(model_type):
    """Layer 0's attention output under sdpa, against softmax(q k^T / sqrt(d)) v over every non-padding key."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    model = bidirectional.make_bidirectional(_tiny(model_type))
    attention = model.layers[0].self_attn
    seen = {}

    def hook(module, args, kwargs, output):
        seen["x"], seen["rope"], seen["out"] = kwargs.get("hidden_states", args[0] if args else None), \
            kwargs["position_embeddings"], output[0]

    handle = attention.register_forward_hook(hook, with_kwargs=True)
    ids, mask = _batch()
    with torch.no_grad():
        bidirectional.forward(model, ids, mask)
        handle.remove()
        x, (cos, sin) = seen["x"], seen["rope"]
        b, n, heads, kv, d = x.shape[0], x.shape[1], 4, 2, 8
        q = attention.q_proj(x).view(b, n, heads, d)
        k = attention.k_proj(x).view(b, n, kv, d)
        if hasattr(attention, "q_norm"):
            q, k = attention.q_norm(q), attention.k_norm(k)
        v = attention.v_proj(x).view(b, n, kv, d).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)
        k, v = k.repeat_interleave(heads // kv, 1), v.repeat_interleave(heads // kv, 1)
        scores = q @ k.transpose(-1, -2) / d ** 0.5
        scores = scores.masked_fill(~mask[:, None, None, :].bool(), float("-inf"))  # padding only, no triangle
        want = attention.o_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, heads * d))
    np.testing.assert_allclose(seen["out"][0], want[0], atol=1e-5)
    np.testing.assert_allclose(seen["out"][1, 3:], want[1, 3:], atol=1e-5)  # padded positions' outputs are unused


def test_flash_attention_and_unprepared_models_are_refused():
    model = _tiny("llama")
    with pytest.raises(bidirectional.BidirectionalError, match="was not made bidirectional"):
        bidirectional.forward(model, *_batch())
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(bidirectional.BidirectionalError, match="'flash_attention_2' cannot run bidirectionally"):
        bidirectional.make_bidirectional(model)


# -- the llm2vec package, run live on adapters genembed's environment wrote --------------------------
_LIVE = """
import json, os, sys
from llm2vec import LLM2Vec
first, second, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
os.chdir(first)  # transformers reads the adapter's relative base name from the working folder
encoder = LLM2Vec.from_pretrained(first, peft_model_name_or_path=second, pooling_mode="mean")
print(json.dumps(encoder.encode(texts, batch_size=3, show_progress_bar=False, device="cpu").tolist()))
"""


@pytest.mark.skipif(not SIDE_VENV.exists(), reason="no .venv-llm2vec (bash scripts/llm2vec_env.sh builds it)")
def test_the_llm2vec_package_reads_adapters_written_here_the_same_way(tmp_path, reference):
    """Adapters saved by this environment's peft over the fixture's base (written by transformers 4.44,
    which cannot read a transformers-5 model folder); the package embeds them in its own venv."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    shutil.copytree(FIXTURE / "base", tmp_path / "base")
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, seed, targets in ((first, 3, ["q_proj", "o_proj", "up_proj"]), (second, 4, ["k_proj", "gate_proj"])):
        model = AutoModel.from_pretrained(tmp_path / "base")
        peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, lora_dropout=0.0, target_modules=targets))
        gen = torch.Generator().manual_seed(seed)
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.data = torch.randn(param.shape, generator=gen) * 0.3
        peft_model.save_pretrained(folder)
        config = json.loads((folder / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = "../base"
        # peft 0.13 (the package's) refuses the settings newer peft writes: keep those it knows
        known = json.loads((FIXTURE / "mntp" / "adapter_config.json").read_text())
        (folder / "adapter_config.json").write_text(json.dumps({k: v for k, v in config.items() if k in known}))
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tmp_path / "base" / name, first / name)
    texts = reference["texts"]
    run = subprocess.run([str(SIDE_VENV), "-c", _LIVE, str(first), str(second), json.dumps(texts)],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    want = np.asarray(json.loads(run.stdout.strip().splitlines()[-1]), dtype=np.float32)
    got = load_teacher(f"{first}+{second}").embed(texts)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    # the adapters really act: without the second one the vectors move
    assert np.abs(load_teacher(str(first)).embed(texts) - want).max() > 0.05


# -- training over an LLM2Vec teacher ------------------------------------------------------------
@pytest.mark.parametrize("unit_targets", [True, False])
def test_training_aligns_to_unit_or_raw_llm2vec_states(unit_targets, tiny_responses, tmp_path, monkeypatch):
    """--unit-targets (the default) scales the teacher's raw states to unit length, query and document rows
    alike; --no-unit-targets aligns to them as the teacher gives them (the official trainer's way)."""
    import genembed.train as train_module
    from genembed.jsonl import read_rows
    from genembed.train import TrainConfig, train

    class Seen(Exception):
        pass

    def capture(cfg, model, queries, responses, targets, procs):
        raise Seen(targets.numpy())

    monkeypatch.setattr(train_module, "Steps", capture)
    spec = f"{FIXTURE / 'mntp'}+{FIXTURE / 'simcse'}"
    cfg = TrainConfig(responses=str(tiny_responses), out_dir=str(tmp_path / "run"), backbone=str(FIXTURE / "base"),
                      teacher=spec, num_compression_tokens=3, batch_size=2, steps=2, ridge_examples=4,
                      max_query_tokens=16, target="response", documents=True, unit_targets=unit_targets,
                      query_lens=False)
    with pytest.raises(Seen) as seen:
        train(cfg, show_progress_bar=False)
    targets = seen.value.args[0]
    answers = [r["response"] for r in read_rows(tiny_responses)]
    raw = LLM2VecTeacher(spec).embed(answers)
    assert targets.shape == (2 * len(answers), raw.shape[1])  # a query row and a document row per answer
    expected = raw / np.linalg.norm(raw, axis=1, keepdims=True) if unit_targets else raw
    np.testing.assert_allclose(targets, np.concatenate([expected, expected]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1, atol=1e-2)  # the raw states are not unit already


def test_an_adapter_names_a_bundled_backbone_by_its_alias(teacher_copy, monkeypatch):
    """A teacher built over a backbone genembed ships names it by its alias (its de-quantised folder is in a
    per-machine cache); the alias is read back as that backbone."""
    import genembed.backbone as backbone_module
    import genembed.teachers.llm2vec_spec as spec_module
    from genembed.teacher_build.layout import base_reference

    assert base_reference("smollm2-135m-instruct", "/cache/some/folder") == "smollm2-135m-instruct"
    assert base_reference(str(teacher_copy / "base"), str(teacher_copy / "base")) == str((teacher_copy / "base").resolve())
    config = teacher_copy / "mntp" / "adapter_config.json"
    config.write_text(config.read_text().replace('"../base"', '"tiny-alias"'))
    monkeypatch.setitem(backbone_module.ALIASES, "tiny-alias", ("unused", "unused"))
    monkeypatch.setattr(spec_module, "transformers_path", lambda name: str(teacher_copy / "base"))
    teacher = LLM2VecTeacher(f"{teacher_copy / 'mntp'}+{teacher_copy / 'simcse'}")
    reference_teacher = LLM2VecTeacher(f"{FIXTURE / 'mntp'}+{FIXTURE / 'simcse'}")
    np.testing.assert_allclose(teacher.embed(["a text"]), reference_teacher.embed(["a text"]), atol=1e-6)


# -- the bundled teacher -------------------------------------------------------------------------------------
@pytest.mark.integration
def test_the_bundled_teacher_opens_by_name_offline_and_the_self_supervised_checkpoint_names_it():
    from genembed.teachers import BUNDLED_LLM2VEC

    (name,) = BUNDLED_LLM2VEC
    teacher = load_teacher(name)
    assert isinstance(teacher, LLM2VecTeacher) and teacher.name == name and teacher.dim == 576
    x = teacher.embed(["How do I boil an egg?", "Paris is the capital of France.", ""])
    assert x.shape == (3, 576) and np.isfinite(x).all()
    assert not np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-2)  # raw pooled states, as llm2vec gives them
    folder = ROOT / "genembed" / BUNDLED_LLM2VEC[name]
    assert json.loads((folder / "mntp" / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "smollm2-135m-instruct"
    assert json.loads((ROOT / "genembed" / "self-supervised" / "config.json").read_text())["teacher"] == name


def test_a_bundled_teacher_missing_from_the_install_is_named(monkeypatch):
    import genembed.teachers as teachers_module

    monkeypatch.setitem(teachers_module.BUNDLED_LLM2VEC, "gone-llm2vec", "no-such-folder")
    with pytest.raises(TeacherError, match=r"the bundled teacher 'gone-llm2vec' is missing from this install"):
        load_teacher("gone-llm2vec")


def test_a_text_with_no_tokens_is_read_as_eos(teacher_copy):
    """SmolLM2's tokenizer adds no BOS: an empty text had no token to pool and gave NaN; it is read as EOS."""
    spec = f"{teacher_copy / 'mntp'}+{teacher_copy / 'simcse'}"
    teacher = LLM2VecTeacher(spec)
    teacher.tokenizer.add_bos_token = False  # (the fixture's tokenizer adds one; SmolLM2's does not)
    teacher.tokenizer.bos_token = None
    x = teacher.embed(["", "a text", teacher.tokenizer.eos_token])
    assert np.isfinite(x).all()
    np.testing.assert_allclose(x[0], x[2], atol=1e-6)

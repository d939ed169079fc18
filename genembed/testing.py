"""A tiny, randomly initialised llama and a tokenizer trained on the spot, saved as a local
folder: every real code path (folder loading, chat template, padding) at a size that runs in
seconds. Used by the tests, the fault-injection trials and the memory benchmark."""
from __future__ import annotations

import torch

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "how do I boil an egg", "put the egg in boiling water for nine minutes",
    "what is the capital of france", "paris is the capital of france",
    "write a poem about the sea", "the sea is wide and blue and deep",
    "explain how a neural network learns", "it adjusts weights to reduce a loss by gradient descent",
    "summarize the following passage", "generate a passage that best answers this question",
] * 20


def build_tiny_backbone(folder, hidden: int = 32, layers: int = 2, seed: int = 0, init_range: float = 0.2) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "<|im_start|>", "<|im_end|>"]
    tk = Tokenizer(models.BPE(unk_token=None))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=420, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="<|im_end|>",
                                        pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, initializer_range=init_range, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def cpu_kind() -> str:
    """The CPU kind float32 results are expected bit-exact within: torch's kernel capability (AVX2,
    AVX512) plus AMX where the CPU has it. An AVX512 machine with AMX rounded the bundled default's
    float32 embeddings differently, by up to 3.4e-7, from the AVX512 machine that had made the
    fixture (2026-12-02), so the two are told apart."""
    from pathlib import Path

    kind = torch.backends.cpu.get_cpu_capability()
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpuinfo.read_text().split() if cpuinfo.exists() else []
    return kind + ("-AMX" if "amx_tile" in flags else "")

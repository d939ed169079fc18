"""Fixtures: the tiny llama of genembed.testing (a tokenizer trained on the spot, random weights),
a model around it and a few response rows."""
from __future__ import annotations

import json

import pytest

from genembed.testing import CORPUS, build_tiny_backbone


@pytest.fixture(scope="session")
def tiny_backbone_path(tmp_path_factory):
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def other_backbone_path(tmp_path_factory):
    return build_tiny_backbone(tmp_path_factory.mktemp("other-llama"), hidden=48, seed=1)


@pytest.fixture(scope="session")
def tiny_backbone(tiny_backbone_path):
    from genembed.backbone import load_backbone

    return load_backbone(tiny_backbone_path)


@pytest.fixture()
def tiny_model(tiny_backbone):
    from genembed.model import GenEmbed

    return GenEmbed.create(tiny_backbone, embedding_dim=32, teacher="self", seed=0,
                           num_thought_tokens=2, num_compression_tokens=3)


@pytest.fixture(scope="session")
def tiny_responses(tmp_path_factory):
    """(query, response) rows as `genembed generate` writes them."""
    path = tmp_path_factory.mktemp("data") / "responses.jsonl"
    pairs = [(CORPUS[i], CORPUS[i + 1]) for i in range(0, 10, 2)]
    rows = [{"id": str(i), "query": q, "response": r, "finished": True} for i, (q, r) in enumerate(pairs)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def run_cli(monkeypatch, capsys):
    """`genembed ARGS` in this process, as the installed command runs it: run_cli(*args) -> (exit code, stdout,
    stderr)."""
    import sys

    from genembed.cli import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["genembed", *args])
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return run

"""The recipe-experiment runner's own logic: commands it prints and the bars it reports."""
import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("sweep", Path(__file__).resolve().parents[1] / "experiments" / "sweep.py")
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)


def test_train_command_names_only_what_differs_from_the_recipe():
    cmd = sweep.train_command({"responses": "r.jsonl", "out_dir": "o", "steps": 150, "bf16": True,
                               "num_thought_tokens": 10, "num_compression_tokens": 10, "w_rec": 1.0, "lr_tokens": 5e-2,
                               "query_lens": False})
    assert cmd == "genembed train --responses r.jsonl --out o --steps 150 --bf16 --thought-tokens 10 --w-rec 1.0 --no-query-lens"


def test_a_variant_overrides_the_spec_and_its_base():
    spec = {"responses": "all.jsonl", "base": {"steps": 150, "bf16": True}}
    plain = sweep.variant_settings(spec, {"name": "a", "seed": 1}, "runs/a")
    assert plain == {"responses": "all.jsonl", "out_dir": "runs/a", "steps": 150, "bf16": True, "seed": 1}
    own = sweep.variant_settings(spec, {"name": "b", "responses": "mine.jsonl", "out_dir": "elsewhere", "steps": 600,
                                        "scores": "r.json#b"}, "runs/b")
    assert own == {"responses": "mine.jsonl", "out_dir": "elsewhere", "steps": 600, "bf16": True}


def test_bars_against_hand_computed_reference():
    row = {"qa": {"ndcg@10": 0.6}, "classification": {"accuracy": 0.8}, "clustering": {"v_measure": 0.3}}
    reference = {
        "teacher on input (x)": {"qa": {"ndcg@10": 0.9}, "classification": {"accuracy": 0.8}, "clustering": {"v_measure": 0.3}},
        "backbone mean-pool": {"qa": {"ndcg@10": 0.3}, "classification": {"accuracy": 0.6}, "clustering": {"v_measure": 0.2}},
        "ridge: y": {"qa": {"ndcg@10": 0.5}, "classification": {"accuracy": 0.7}, "clustering": {"v_measure": 0.35}},
        "HyDE (z)": {"qa": {"ndcg@10": 0.75}},
    }
    b = sweep.bars(row, reference, teacher="all-minilm-l6-v2")
    assert b["min margin over mean-pool/ridge"] == pytest.approx(-0.05)  # clustering vs ridge
    assert b["qa ÷ HyDE"] == pytest.approx(0.8)
    assert b["avg ÷ own teacher on input"] == pytest.approx((0.6 / 0.9 + 1 + 1) / 3)
    self_bars = sweep.bars(row, reference, teacher="self")  # held to its own teacher: the mean-pool
    assert self_bars["avg ÷ own teacher on input"] == pytest.approx((2 + 0.8 / 0.6 + 1.5) / 3)
    assert self_bars["min margin over mean-pool/ridge"] == pytest.approx(0.1) and self_bars["qa ÷ HyDE"] is None


def test_spec_with_an_unknown_setting_is_refused_before_any_work(tmp_path, monkeypatch):
    spec_file = tmp_path / "bad.toml"
    spec_file.write_text('responses = "r.jsonl"\ntasks = ["qa"]\n[[variant]]\nname = "x"\nlr_token = 0.1\n')
    monkeypatch.setattr("sys.argv", ["sweep.py", str(spec_file)])
    with pytest.raises(SystemExit, match="lr_token"):
        sweep.main()


def test_a_row_scored_elsewhere_is_read_from_eval_results_or_another_sweep(tmp_path):
    row = {"qa": {"ndcg@10": 0.7}}
    (tmp_path / "eval.json").write_text(json.dumps({"tasks": {"qa": {}}, "methods": {"genembed default": row}}))
    (tmp_path / "sweep.json").write_text(json.dumps({"results": {"tasks": {"qa": {}}, "methods": {"a": row}}, "runs": {}}))
    assert sweep.scored_row("eval.json#genembed default", tmp_path) == ({"qa": {}}, row)
    assert sweep.scored_row("sweep.json#a", tmp_path) == ({"qa": {}}, row)
    with pytest.raises(SystemExit, match="no row 'b'.*a"):
        sweep.scored_row("sweep.json#b", tmp_path)

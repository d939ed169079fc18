"""ShareGPT as training data (genembed.data): which answered rows train, and in which order."""
import random

from genembed.data import load_sharegpt, training_rows


def test_training_rows_are_the_splits_first_queries_however_the_answers_were_made():
    """The same answers written in two orders (generation answers the longest queries first, and a resumed or
    extended run appends another such pass) give the same training rows, in the split's order: `--limit N` of
    training then reads the same first N queries. Held-out ids and empty answers are left out."""
    train = load_sharegpt("train")[:40]
    heldout = load_sharegpt("heldout")[0]
    rows = [{"id": c.id, "query": c.query, "response": f"answer {i}"} for i, c in enumerate(train)]
    rows[5]["response"] = "  "
    extra = [{"id": heldout.id, "query": heldout.query, "response": "an answer"}]
    by_length = sorted(rows[:25], key=lambda r: -len(r["query"])) + sorted(rows[25:], key=lambda r: -len(r["query"]))
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    expected = [r for i, r in enumerate(rows) if i != 5]
    assert training_rows(by_length + extra) == expected
    assert training_rows(shuffled + extra) == expected

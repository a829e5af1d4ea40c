"""The long-question view of the development collections (issue 37), for tuning BM25 and fusion
on questions that are paragraphs rather than phrases:

- scifact-long: paragraphs written for 60 SciFact train claims (eval/long/scifact-paragraphs.jsonl,
  this repository's own text), judged by the claims' own relevance labels;
- med-long, cacm-long: the collections' judged questions of at least MIN_WORDS words, with their
  judgements.

Each view is a BEIR folder under OUT whose corpus.jsonl is a symbolic link to the collection's own
(so `lariat eval beir` reuses the collection it ingested for the full set, and nothing of the
collections is copied). The collections are read from DATA (../shared/data) at run time.

usage: python3 scripts/long-questions.py DATA OUT
"""

import csv
import json
import os
import sys

MIN_WORDS = 20
HERE = os.path.dirname(os.path.abspath(__file__))
PARAGRAPHS = os.path.join(HERE, "..", "eval", "long", "scifact-paragraphs.jsonl")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def judged_by(source, split):
    with open(os.path.join(source, "qrels", f"{split}.tsv"), encoding="utf-8") as f:
        return {r[0] for r in csv.reader(f, delimiter="\t") if r[0] != "query-id" and int(r[-1]) > 0}


def write_view(data, out, name, split, queries):
    source = os.path.join(data, name)
    view = os.path.join(out, f"{name}-long")
    os.makedirs(os.path.join(view, "qrels"), exist_ok=True)
    link = os.path.join(view, "corpus.jsonl")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.abspath(os.path.join(source, "corpus.jsonl")), link)
    wanted = {q["_id"] for q in queries}
    with open(os.path.join(source, "qrels", f"{split}.tsv"), encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t")]
    header, rows = (rows[0], rows[1:]) if rows and rows[0][0] == "query-id" else (None, rows)
    kept = [r for r in rows if r[0] in wanted]
    judged = {r[0] for r in kept if int(r[-1]) > 0}
    missing = wanted - judged
    if missing:
        sys.exit(f"{name}: no relevant judgement for questions {sorted(missing)}")
    with open(os.path.join(view, "qrels", f"{split}.tsv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        if header:
            w.writerow(header)
        w.writerows(kept)
    with open(os.path.join(view, "queries.jsonl"), "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps({"_id": q["_id"], "text": q["text"]}) + "\n")
    words = sorted(len(q["text"].split()) for q in queries)
    print(f"{view}: {len(queries)} questions, median {words[len(words) // 2]} words, longest {words[-1]}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data, out = sys.argv[1], sys.argv[2]
    paragraphs = read_jsonl(PARAGRAPHS)
    claims = {q["_id"] for q in read_jsonl(os.path.join(data, "scifact", "queries.jsonl"))}
    unknown = [p["_id"] for p in paragraphs if p["_id"] not in claims]
    if unknown:
        sys.exit(f"{PARAGRAPHS}: no SciFact claim {unknown}")
    write_view(data, out, "scifact", "train", paragraphs)
    for name in ("med", "cacm"):
        judged = judged_by(os.path.join(data, name), "test")
        queries = [
            q
            for q in read_jsonl(os.path.join(data, name, "queries.jsonl"))
            if q["_id"] in judged and len(q["text"].split()) >= MIN_WORDS
        ]
        write_view(data, out, name, "test", queries)


if __name__ == "__main__":
    main()

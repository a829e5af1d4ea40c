"""The plain BM25 peer of issue 13 on BEIR-layout datasets: bm25s (k1 0.9, b 0.4, English stop
words and Snowball stemming) over whole documents (title and text), nDCG@10 by pytrec_eval, with
the same treatment of the data as `lariat eval beir` (empty documents left out, judgements for
absent documents or queries ignored, the split `test` or the dataset's only one).

usage: python3 scripts/peer_bm25.py DIR...       (pip install bm25s==0.2.14 PyStemmer==2.2.0.3)
Prints one line per dataset and the mean, as JSON on the last line.
"""

import json
import os
import sys

import bm25s
import pytrec_eval
import Stemmer


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def split_of(qrels_dir):
    if os.path.exists(os.path.join(qrels_dir, "test.tsv")):
        return "test"
    (only,) = [n[:-4] for n in os.listdir(qrels_dir) if n.endswith(".tsv")]
    return only


def evaluate(directory):
    docs = [
        d
        for d in read_jsonl(os.path.join(directory, "corpus.jsonl"))
        if (d.get("title") or "").strip() or (d.get("text") or "").strip()
    ]
    ids = [str(d["_id"]) for d in docs]
    known = set(ids)
    queries = {str(q["_id"]): q.get("text") or "" for q in read_jsonl(os.path.join(directory, "queries.jsonl"))}
    qrels = {}
    split = split_of(os.path.join(directory, "qrels"))
    with open(os.path.join(directory, "qrels", f"{split}.tsv"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if i == 0 and parts[0] == "query-id":
                continue
            q, d, r = (parts[0], parts[-2], parts[-1])
            if d in known and q in queries:
                qrels.setdefault(q, {})[d] = int(r)
    judged = [q for q, j in qrels.items() if any(r > 0 for r in j.values()) and queries[q].strip()]
    stemmer = Stemmer.Stemmer("english")
    texts = [f"{d.get('title') or ''} {d.get('text') or ''}" for d in docs]
    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize([queries[q] for q in judged], stopwords="en", stemmer=stemmer, show_progress=False)
    found, scores = retriever.retrieve(tokens, k=min(100, len(ids)), show_progress=False)
    run = {
        q: {ids[int(doc)]: float(score) for doc, score in zip(found[i], scores[i])}
        for i, q in enumerate(judged)
    }
    per_query = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in judged}, {"ndcg_cut.10"}).evaluate(run)
    ndcg = sum(m["ndcg_cut_10"] for m in per_query.values()) / len(judged)
    return os.path.basename(os.path.normpath(directory)), split, len(judged), ndcg


def main():
    results = [evaluate(d) for d in sys.argv[1:]]
    for name, split, n, ndcg in results:
        print(f"{name} ({split}, {n} queries): bm25s nDCG@10 {ndcg:.4f}")
    mean = sum(r[3] for r in results) / len(results)
    print(f"mean: {mean:.4f}")
    print(json.dumps({"datasets": {r[0]: r[3] for r in results}, "mean": mean}))


if __name__ == "__main__":
    main()

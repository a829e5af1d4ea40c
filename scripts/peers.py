"""The plain peers of issue 13 on BEIR-layout datasets, each scored by nDCG@10 (pytrec_eval) with
the same treatment of the data as `lariat eval beir` (empty documents left out, judgements for
absent documents or queries ignored, the split `test` or the dataset's only one):

- bm25s: bm25s with k1 0.9, b 0.4, English stop words and Snowball stemming, over whole documents
  (title and text);
- minilm: the int8 all-MiniLM-L6-v2 lariat embeds with (its ONNX file and tokenizer from the
  assets `make setup` installs), mean-pooled and normalised, one vector per whole document
  (truncated at the model's 256 tokens), exact cosine search;
- rrf: naive reciprocal rank fusion (k 60) of the two top-100 lists.

usage: python3 scripts/peers.py DIR...
  (make peers installs them)
Document vectors are cached under ~/.cache/lariat/peers. Prints one line per dataset and the
means, and the figures as JSON on the last line.
"""

import hashlib
import json
import os
import sys

import bm25s
import numpy as np
import onnxruntime
import pytrec_eval
import Stemmer
from tokenizers import Tokenizer

ASSETS = os.environ.get("LARIAT_ASSETS_DIR", os.path.expanduser("~/.cache/lariat/assets"))
MODEL = os.path.join(ASSETS, "models", "all-minilm-l6-v2-q8")
CACHE = os.path.expanduser("~/.cache/lariat/peers")
DEPTH = 100


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def split_of(qrels_dir):
    if os.path.exists(os.path.join(qrels_dir, "test.tsv")):
        return "test"
    (only,) = [n[:-4] for n in os.listdir(qrels_dir) if n.endswith(".tsv")]
    return only


def load(directory):
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
    texts = [f"{d.get('title') or ''} {d.get('text') or ''}".strip() for d in docs]
    return split, ids, texts, [queries[q] for q in judged], judged, qrels


def bm25s_runs(ids, texts, queries):
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
    found, scores = retriever.retrieve(tokens, k=min(DEPTH, len(ids)), show_progress=False)
    return [[(ids[int(d)], float(s)) for d, s in zip(found[i], scores[i])] for i in range(len(queries))]


class MiniLM:
    def __init__(self):
        self.session = onnxruntime.InferenceSession(os.path.join(MODEL, "model.onnx"))
        self.tokenizer = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
        self.tokenizer.enable_truncation(256)
        self.tokenizer.enable_padding()

    def embed(self, texts, batch=32):
        out = []
        for start in range(0, len(texts), batch):
            enc = self.tokenizer.encode_batch(texts[start : start + batch])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            (hidden,) = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            summed = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            out.append(summed / np.linalg.norm(summed, axis=1, keepdims=True))
        return np.concatenate(out).astype(np.float32)


def minilm_runs(model, ids, texts, queries):
    key = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    path = os.path.join(CACHE, f"{key}.npy")
    if os.path.exists(path):
        vectors = np.load(path)
    else:
        vectors = model.embed(texts)
        os.makedirs(CACHE, exist_ok=True)
        np.save(path, vectors)
    scores = model.embed(queries) @ vectors.T
    runs = []
    for row in scores:
        top = np.argsort(-row, kind="stable")[:DEPTH]
        runs.append([(ids[i], float(row[i])) for i in top])
    return runs


def rrf(a, b, k=60):
    fused = {}
    for run in (a, b):
        for rank, (doc, _) in enumerate(run):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank + 1)
    return sorted(fused.items(), key=lambda x: -x[1])


def ndcg(qrels, judged, runs):
    run = {q: {d: s for d, s in r} for q, r in zip(judged, runs)}
    per_query = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in judged}, {"ndcg_cut.10"}).evaluate(run)
    return sum(m["ndcg_cut_10"] for m in per_query.values()) / len(judged)


def evaluate(model, directory):
    split, ids, texts, queries, judged, qrels = load(directory)
    lexical = bm25s_runs(ids, texts, queries)
    dense = minilm_runs(model, ids, texts, queries)
    fused = [rrf(a, b) for a, b in zip(lexical, dense)]
    name = os.path.basename(os.path.normpath(directory))
    figures = {p: ndcg(qrels, judged, r) for p, r in (("bm25s", lexical), ("minilm", dense), ("rrf", fused))}
    return name, split, len(judged), figures


def main():
    model = MiniLM()
    results = [evaluate(model, d) for d in sys.argv[1:]]
    peers = ("bm25s", "minilm", "rrf")
    for name, split, n, f in results:
        print(f"{name} ({split}, {n} queries): " + "  ".join(f"{p} {f[p]:.4f}" for p in peers))
    means = {p: sum(r[3][p] for r in results) / len(results) for p in peers}
    print("mean: " + "  ".join(f"{p} {means[p]:.4f}" for p in peers))
    print(json.dumps({"datasets": {r[0]: r[3] for r in results}, "mean": means}))


if __name__ == "__main__":
    main()

"""Recomputes lariat's eval metrics with pytrec_eval (trec_eval's own code) from the run file.

usage: pytrec_check.py QRELS_TSV RUN_FILE REPORT_JSON MODE  (the first dataset of the report)
Prints the absolute differences and exits 1 if any exceeds 1e-4.
"""
import json
import sys

import pytrec_eval

qrels_path, run_path, report_path, mode = sys.argv[1:5]
qrels = {}
with open(qrels_path) as f:
    for i, line in enumerate(f):
        parts = line.rstrip("\n").split("\t")
        if i == 0 and parts[0] == "query-id":
            continue
        q, d, r = parts
        qrels.setdefault(q, {})[d] = int(r)
run = {}
with open(run_path) as f:
    for line in f:
        q, _, d, _, score, _ = line.split()
        run.setdefault(q, {})[d] = float(score)
judged = {q for q, docs in qrels.items() if any(r > 0 for r in docs.values())}
for q in judged:
    run.setdefault(q, {})
measures = {"ndcg_cut.10", "recall.10,100", "map_cut.100"}
per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)


def top10(docs):
    ranked = sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:10]
    return dict(ranked)


rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate({q: top10(d) for q, d in run.items()})
n = len(judged)
ours = next(r for r in json.load(open(report_path))["datasets"][0]["results"] if r["mode"] == mode)


def mean(results, measure):
    # a query with an empty run is absent from pytrec_eval's results and scores 0
    return sum(results.get(q, {}).get(measure, 0.0) for q in judged) / n


theirs = {
    "ndcg@10": mean(per_query, "ndcg_cut_10"),
    "recall@10": mean(per_query, "recall_10"),
    "recall@100": mean(per_query, "recall_100"),
    "map@100": mean(per_query, "map_cut_100"),
    "mrr@10": mean(rr, "recip_rank"),
}
worst = 0.0
for name, value in theirs.items():
    diff = abs(value - ours[name])
    worst = max(worst, diff)
    print(f"{mode} {name}: lariat {ours[name]:.6f} pytrec_eval {value:.6f} diff {diff:.2e}")
sys.exit(1 if worst > 1e-4 else 0)

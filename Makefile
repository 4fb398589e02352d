# The project's vocabulary. `make test` runs everything CI runs.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test unit e2e lint fmt crds tools controlplane argocd-health demo bench bench-smoke python-deps rules dashboard clean-cache \
	image image-test upgrade-test fuzz deny chaos

all: build

## build: the operator and the emulator (debug)
build:
	$(CARGO) build --workspace --bins

## crds: regenerate the CRD from the Rust types; the chart carries the same file in files/crds/
## (rendered by templates/crds.yaml, so upgrades apply it) and deploy/operator.yaml includes it
crds:
	$(CARGO) build -q --bin eventbridge-partner-operator
	$(CARGO) run -q --bin eventbridge-partner-operator -- crd > target/pes-crd.yaml
	$(CARGO) run -q --bin eventbridge-partner-operator -- crd --kind PartnerAccount > target/pa-crd.yaml
	mv target/pes-crd.yaml crds/partnereventsources.eventbridgepartner.dev.yaml
	mv target/pa-crd.yaml crds/partneraccounts.eventbridgepartner.dev.yaml
	cp crds/*.yaml charts/eventbridge-partner-operator/files/crds/
	hack/render-deploy.sh

## tools: helm, kubeconform and friends at pinned versions into target/tools/bin
tools:
	hack/tools.sh

## controlplane: kube-apiserver + etcd and the matching kubectl, built once into .cache/
controlplane:
	hack/controlplane.sh build

## argocd-health: Argo CD's own health assessment (tests/argocd), built once into .cache/
argocd-health:
	hack/argocd-health.sh build

## image: the operator image from the unchanged Dockerfile with rootful podman; stand-in base
## images made from Debian packages once (docs/image.md). IMAGE_FLAGS=--committed builds HEAD.
image:
	hack/image.sh $(IMAGE_FLAGS)

## image-test: the built image run as the chart's pod, against the control plane and the emulator
## (the packaging binary's image suite, tests/packaging/image.rs)
image-test: controlplane tools
	$(CARGO) test --test packaging image::image_runs_as_the_charts_pod -- --nocapture

## upgrade-test: helm upgrade and kubectl apply from the chart and manifest of commit 0b73c28
## (the packaging binary's upgrade suite, tests/packaging/upgrade.rs)
upgrade-test: controlplane tools
	$(CARGO) test --test packaging upgrade::upgrade_from_0b73c28 -- --nocapture

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## unit: the pure and mocked tests only (no control plane)
unit:
	$(CARGO) test --workspace --lib --bins

## e2e: every end-to-end suite (tests/e2e/, one binary) against the real control plane and the
## emulator; the install suite needs the tools (helm). One suite: cargo test --test e2e accounts::
e2e: controlplane tools
	$(CARGO) test --test e2e -- --nocapture

## python-deps: boto3 and pytest (the emulator's tests), Grafana's foundation SDK (the dashboard)
python-deps:
	python3 -m pip install --quiet --disable-pip-version-check boto3 pytest 'grafana-foundation-sdk==1769699998!10.1.0'

## rules: regenerate deploy/prometheus-rules.yaml from the chart's PrometheusRule
rules: tools
	hack/render-rules.sh

## dashboard: regenerate the Grafana dashboard (deploy/ and the chart's copy) with Grafana's SDK
dashboard: python-deps
	python3 hack/dashboard.py

## test: everything CI runs (TEST_ARGS: extra libtest args, e.g. --skip NAME)
test: controlplane tools argocd-health python-deps lint
	nice -n 10 target/tools/bin/cargo-deny check bans licenses sources
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace -- --nocapture $(TEST_ARGS)
	python3 -m pytest -q emulator/tests

## deny: licenses, duplicate versions and sources of the dependency tree (deny.toml)
deny: tools
	nice -n 10 target/tools/bin/cargo-deny check bans licenses sources

## fuzz: every fuzz target (the emulator's request parsing, the operator's error
## classification) for FUZZ_SECONDS each (default 60; `cargo test` runs them briefly)
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test -p eventbridge-partner-emulator --lib fuzz:: -- --nocapture
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --test checks fuzz::fuzz_ -- --nocapture

## chaos: the chaos suite (tests/chaos): OBJECTS objects created, changed and deleted for DURATION
## seconds under AWS and Kubernetes faults, operator kills and kube-apiserver restarts, after a
## fault-free baseline of the same operations; then the invariants. SEED repeats a run (default:
## a random one, printed). The last line gives the figures.
SEED ?=
DURATION ?= 300
OBJECTS ?= 300
chaos: controlplane
	@mkdir -p target
	@set -o pipefail; \
	CHAOS_SEED=$(SEED) CHAOS_DURATION=$(DURATION) CHAOS_OBJECTS=$(OBJECTS) \
		$(CARGO) test --test chaos -- --ignored --exact chaos --nocapture 2>&1 | tee target/chaos.log; \
	status=$$?; grep '^chaos: objects=' target/chaos.log | tail -1; exit $$status

## demo: control plane, emulator and operator, with the example applied; Ctrl-C stops it all
demo:
	hack/demo.sh

## bench: the operator at scale (N = BENCH_SIZES, default 1000,10000) against the bound N/Q and a
## sequential SDK loop; results to docs/bench/results.json and docs/bench/scale.png
BENCH_SIZES ?= 1000,10000
bench: controlplane
	BENCH_SIZES=$(BENCH_SIZES) BENCH_RESULTS=$(CURDIR)/docs/bench/results.json \
		$(CARGO) test --release --test bench -- --ignored --nocapture
	python3 -m pip install --quiet --disable-pip-version-check matplotlib
	python3 hack/bench-plot.py docs/bench/results.json docs/bench/scale.png

## bench-smoke: the benchmark harness at N = 200 (debug build, short steady window), as CI runs it
bench-smoke: controlplane
	BENCH_SIZES=200 BENCH_STEADY_SECS=10 BENCH_RESYNC_SECS=10 \
		$(CARGO) test --test bench -- --ignored --nocapture

clean-cache:
	rm -rf .cache target/tools target/demo

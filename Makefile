# LockLab: set-up, build, run and test. `make quick` is the main job, `make test` the tests.

SHELL := /bin/bash
# chromium: the report's test opens report.html in a headless browser (skipped, loudly, without it)
APT_PACKAGES := libnuma-dev libhwloc-dev libck-dev liburcu-dev hwloc spin gcc python3-venv munge slurmctld slurmd slurm-client chromium
# Installed without their recommendations (some 25 Slurm plugin packages: ipmi, hdf5, rrd, mysql,
# influxdb ... which the one-node test does not use).
APT_NO_RECOMMENDS := munge slurmctld slurmd slurm-client
MACHINE ?= $(shell hostname -s)-$(shell nproc)cpu
# Your runs: git ignores results/local/. Committed reference results are in results/reference/,
# where no run writes (locklab refuses: see results/reference/README.md).
RESULTS ?= results/local/$(MACHINE)
# The release build's folder: .build, SwiftPM's own, unless told (CI builds the release in a
# folder of its own, beside the tests' debug build in .build, which SwiftPM would lock).
RELEASE_SCRATCH ?= .build
LOCKLAB ?= $(RELEASE_SCRATCH)/release/locklab
QUICK_EXPERIMENT ?= Experiments/quick.yaml
# The report's Python packages go into a virtual environment this Makefile owns (.venv, git-ignored),
# never into the system's or the user's python3. It sees the system's site-packages, so pinned
# versions already installed there are used as they are; anything missing or at another version is
# installed into .venv. `locklab report` uses the .venv beside Experiments/ when there is one
# (LOCKLAB_PYTHON overrides).
SYSTEM_PYTHON ?= python3
VENV := .venv
PYTHON := $(CURDIR)/$(VENV)/bin/python3
REPORT_REQUIREMENTS := Experiments/report/requirements.txt

.PHONY: coherence ceiling sweep report setup setup-system setup-python build build-debug quick test test-swift test-python test-slurm test-tsan torture model-check ci compare-ck clean

## setup: install what is missing (system packages need root), then the report's Python packages
setup: setup-system setup-python

setup-system:
	@missing=""; lean=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 && continue; \
	  case " $(APT_NO_RECOMMENDS) " in *" $$p "*) lean="$$lean $$p";; *) missing="$$missing $$p";; esac; done; \
	if [ -n "$$missing$$lean" ]; then \
	  echo "installing:$$missing$$lean"; \
	  sudo=""; if [ "$$(id -u)" != 0 ]; then sudo=sudo; fi; \
	  $$sudo apt-get update -qq && \
	  if [ -n "$$missing" ]; then $$sudo apt-get install -y -qq $$missing; fi && \
	  if [ -n "$$lean" ]; then $$sudo apt-get install -y -qq --no-install-recommends $$lean; fi; \
	fi

setup-python: $(VENV)/.installed

$(VENV)/.installed: $(REPORT_REQUIREMENTS)
	@[ -x $(PYTHON) ] || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV) \
	  || { echo "make: cannot create $(VENV) with $(SYSTEM_PYTHON) -m venv (Debian: apt-get install python3-venv)"; exit 2; }
	$(PYTHON) -m pip install -q --disable-pip-version-check -r $(REPORT_REQUIREMENTS)
	@touch $@

build: setup-system
	swift build -c release --product locklab --scratch-path $(RELEASE_SCRATCH)

build-debug: setup-system
	swift build

## quick: the main job: Experiments/quick.yaml on this machine, then its report
quick: build setup-python
	$(LOCKLAB) sweep $(QUICK_EXPERIMENT) --out $(RESULTS)/quick --replace-stale --report

## sweep: any experiment, e.g. make sweep EXP=oversubscription (resumes if interrupted)
EXP ?= quick
sweep: build setup-python
	$(LOCKLAB) sweep Experiments/$(EXP).yaml --out $(RESULTS)/$(EXP) --report

## coherence: the coherence probe on this machine (one pair per distance class, every state and
## operation; M load/store on every pair for the heat map), then its report. Seconds, even on 16 CPUs.
coherence: build setup-python
	$(LOCKLAB) coherence --all-pairs --out $(RESULTS)/coherence
	cd Experiments && $(PYTHON) -m report $(abspath $(RESULTS)/coherence)

## ceiling: mcs, ticket and ck-fas at 1 and 2 threads beside the handover ceiling (needs `make coherence`)
ceiling: build setup-python
	$(LOCKLAB) run --lock mcs,ticket,ck-fas --threads 1,2 --repeat 5 --duration 1 \
	  --coherence $(RESULTS)/coherence/coherence.csv --out $(RESULTS)/handover-ceiling
	cd Experiments && $(PYTHON) -m report $(abspath $(RESULTS)/handover-ceiling)

## report: redraw a results folder with the options it remembers (DIR/report.json), e.g.
## make report DIR=results/reference/epyc-2vcpu-vm/quick [REPORT_ARGS="--locks mcs,cna --panels none"]
report: setup-python
	cd Experiments && $(PYTHON) -m report $(abspath $(DIR)) $(REPORT_ARGS)

## compare-ck: each Swift lock beside its Concurrency Kit twin, 5 repeats interleaved
compare-ck: build
	$(LOCKLAB) run --lock mcs,ck-mcs,ticket,ck-ticket,clh,ck-clh,tas,ck-fas,no-lock --threads 1,2 --repeat 5 \
	  --out $(RESULTS)/compare-ck

## test: every test: the Swift suite (mutual exclusion, topology, output), the report's tests and
## a sharded sweep on a one-node Slurm cluster
test: setup test-swift test-python test-slurm

## test-swift: build (failing on any compiler or SwiftPM warning: a clean build prints none; an
## incremental build only shows the warnings of what it recompiles), then the Swift tests.
BUILD_LOG := .build/build-output.log
test-swift:
	@mkdir -p .build
	set -o pipefail; swift build --build-tests 2>&1 | tee $(BUILD_LOG)
	@if grep -n "warning:" $(BUILD_LOG); then echo "make: the build printed the warnings above; a clean build prints none"; exit 1; fi
	swift test --skip-build

## test-python: the report's tests, including a byte-identical regeneration of every committed
## report under results/ and a headless-Chromium screenshot of report.html (-rs prints skips;
## -n auto: one pytest-xdist worker per CPU, since each test draws figures on one CPU)
PYTEST_WORKERS ?= auto
test-python: setup-python
	@if [ -d Experiments/report/tests ]; then $(PYTHON) -m pytest -q -rs -n $(PYTEST_WORKERS) Experiments/report/tests; fi

## test-slurm: a one-node Slurm cluster on this machine (munged, slurmctld, slurmd in a temporary
## folder, stopped by pid afterwards) runs Tests/Slurm/tiny.yaml as 3 shards and a merge-and-report
## job (about 30 s). If the daemons cannot start here it says why and is SKIPPED, loudly; with
## SLURM_REQUIRED=1 (CI) a skip fails.
test-slurm:
	swift build --product locklab
	@Tests/Slurm/one-node-cluster.sh .build/debug/locklab; rc=$$?; \
	if [ $$rc = 77 ] && [ "$(SLURM_REQUIRED)" != 1 ]; then echo "make test-slurm: SKIPPED (see the banner above)"; exit 0; fi; \
	if [ $$rc = 77 ]; then echo "make test-slurm: skipped, but SLURM_REQUIRED=1"; fi; exit $$rc

## test-tsan: the Swift tests again under ThreadSanitizer, in their own build folder, then a short
## torture of every lock with the TSan build; any report fails. Locks whose synchronisation TSan
## cannot see (ck-*, swift-mutex) and the tests that race on purpose are skipped under TSan, each
## saying why (Sources/LockLab/Platform/ThreadSanitizer.swift).
TSAN_SCRATCH := .build-tsan
TSAN_ENV := TSAN_OPTIONS="exitcode=66 $(TSAN_OPTIONS)"
test-tsan: setup-system
	swift build --product locklab
	swift build --build-tests --sanitize=thread --scratch-path $(TSAN_SCRATCH)
	$(TSAN_ENV) swift test --skip-build --sanitize=thread --scratch-path $(TSAN_SCRATCH)
	$(TSAN_ENV) $(TSAN_SCRATCH)/debug/locklab torture --lock all --threads $$(nproc) --seconds 1
	$(TSAN_ENV) $(TSAN_SCRATCH)/debug/locklab torture --lock all --seconds 1

## torture: `locklab torture` on every registered lock (release build): one thread per CPU (many
## fast interleavings), then twice the CPUs (holders and waiters preempted). Fails on any violation.
TORTURE_SECONDS ?= 4
torture: build
	$(LOCKLAB) torture --lock all --threads $$(nproc) --seconds 1
	$(LOCKLAB) torture --lock all --seconds $(TORTURE_SECONDS)

## model-check: spin models of mcs, cna, c-bo-mcs, qspinlock and mcs-stp's parking (Models/*.pml):
## mutual exclusion and no deadlock for 3 threads on 2 nodes; of rcu-qsbr's grace period
## (qsbr.pml): no use after free, no deadlock, and the writer's progress, 2 and 3 readers and a
## writer; and each model's deliberate bugs, which spin must catch by the property each breaks.
model-check: setup-system
	Models/check

## ci: the steps .ci/run runs, one after another here (.ci/run itself builds the release in the
## background, in .build-release, while test, test-tsan and model-check run, then tortures with it).
ci: test test-tsan model-check torture

clean:
	rm -rf .build .build-release $(TSAN_SCRATCH) $(VENV)

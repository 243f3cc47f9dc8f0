# device-sync: the commands a developer needs. `make help` lists them.

CARGO ?= cargo
# Where cargo puts what it builds (CI keeps it outside the clone).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

.PHONY: help run cluster test test-sqlite test-postgres prerequisites lint fmt build fuzz crash-cycles soak bench clients conformance deb

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: build ## run the server on the embedded SQLite default (./data, port 8080)
	$(TARGET_DIR)/release/device-sync serve

cluster: build ## a three-node site on this machine: a throwaway Postgres and nodes n1-n3 on ports 8081-8083
	tools/cluster.sh $(TARGET_DIR)/release/device-sync

# Tests build with fault injection (inert unless a test injects a fault).
TEST_FEATURES = --features device-sync/fault-injection

# The real Socket.IO clients the tests drive: python-socketio in a virtualenv outside the clone,
# from PyPI at the versions pinned in tests/clients/requirements.txt, and Node's
# socket.io-client from npm as tests/clients/package-lock.json pins it.
CLIENTS_DIR ?= $(HOME)/.cache/device-sync/clients
PYTHON ?= python3
export DEVICE_SYNC_PYTHON = $(CLIENTS_DIR)/venv/bin/python

clients: $(CLIENTS_DIR)/venv/.installed tests/clients/node_modules/.installed ## install the real Socket.IO clients the tests use

tests/clients/node_modules/.installed: tests/clients/package-lock.json
	cd tests/clients && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CLIENTS_DIR)/venv/.installed: tests/clients/requirements.txt
	$(PYTHON) -m venv $(CLIENTS_DIR)/venv
	$(CLIENTS_DIR)/venv/bin/pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
	touch $@

test: test-sqlite test-postgres ## run every test: all of them on SQLite, the integration suite again on Postgres

# What a pass needs from Debian's packages (chromium for the admin page's browser test,
# postgresql for the Postgres pass): installed when missing and run as root; otherwise the one
# command to run is named.
prerequisites: ## install what the tests need from Debian's packages (chromium, postgresql)
	tools/prerequisites.sh chromium postgresql

# The tests of several nodes over one database (tests/api/several_nodes.rs) need Postgres: they
# run in test-postgres.
test-sqlite: clients ## every test (unit and integration) on the embedded SQLite
	tools/prerequisites.sh chromium
	$(CARGO) test --workspace $(TEST_FEATURES) -- --skip several_nodes::

# The integration suite on Postgres: tools/postgres.sh starts a throwaway server from Debian's
# `postgresql` package in a temporary directory on PG_PORT, every test server gets a database
# of its own there, and the server is stopped and deleted afterwards. Left out of this pass: the
# test that fills the disk under an SQLite file (it limits the size of the server's files), and
# the backup and restore of the SQLite file (Postgres has pg_dump).
PG_PORT ?= 55433
SQLITE_ONLY = --skip reliability::a_full_disk_refuses_writes --skip backup::
test-postgres: clients ## the integration suite on a throwaway Postgres (needs Debian's postgresql)
	tools/prerequisites.sh postgresql
	@dir=$$(mktemp -d) && chmod 755 $$dir && \
	url=$$(tools/postgres.sh start $$dir/pg $(PG_PORT)) && echo "== Postgres at $$url" && \
	{ DEVICE_SYNC_TEST_POSTGRES=$$url $(CARGO) test --workspace $(TEST_FEATURES) --test api -- $(SQLITE_ONLY); rc=$$?; } ; \
	tools/postgres.sh stop $$dir/pg; rm -rf $$dir; exit $${rc:-1}

lint: ## formatting and clippy, warnings as errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets $(TEST_FEATURES) -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

build: ## build the release binaries (target/release/device-sync and device-sync-tools)
	$(CARGO) build --release -p device-sync --bin device-sync -p device-sync-tools --bin device-sync-tools

# The Debian package (packaging/, `[package.metadata.deb]` in Cargo.toml), from the release
# binaries; cargo-deb is a cargo subcommand from the crates registry.
deb: build ## the Debian package for the back-office PC (needs `cargo install cargo-deb`)
	@command -v cargo-deb >/dev/null || { echo "cargo-deb is not installed: cargo install cargo-deb"; exit 2; }
	$(CARGO) deb --no-build -p device-sync

# Long runs of the fuzz and soak tests (both run briefly in `make test`). FUZZ_CASES multiplies
# the fuzzer's cases; each run picks a new seed and prints it (FUZZ_SEED=n repeats a run).
FUZZ_CASES ?= 50
SOAK_SECONDS ?= 600

fuzz: ## fuzz the decoder, every event handler and every endpoint for long (FUZZ_CASES=50)
	FUZZ_CASES=$(FUZZ_CASES) FUZZ_SEED=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')} \
	  $(CARGO) test --release $(TEST_FEATURES) --test api fuzz -- --nocapture

CRASH_CYCLES ?= 100
crash-cycles: ## SIGKILL the real binary under writers CRASH_CYCLES times (100), then check the whole history
	CRASH_CYCLES=$(CRASH_CYCLES) $(CARGO) test --release $(TEST_FEATURES) --test api kill_after_kill -- --nocapture

soak: ## the mixed-load soak against the real binary for SOAK_SECONDS (600)
	SOAK_SECONDS=$(SOAK_SECONDS) $(CARGO) test --release $(TEST_FEATURES) --test api soak -- --nocapture

# The Node.js peer measured side by side when its node_modules are installed (`npm install`
# in that folder); without it the bench measures this server alone and says so.
PEER_DIR ?= ../shared/peers/node-ws

bench: build ## every load mode against fresh servers (and the Node peer); writes docs/PERFORMANCE.md
	$(TARGET_DIR)/release/device-sync-tools bench --peer $(PEER_DIR) --out docs/PERFORMANCE.md

# The public Socket.IO protocol test suite (`test-suite/` of the repository
# socketio/socket.io-protocol, not kept here) against `device-sync conformance`, which serves the
# handlers it expects on port 3000. SUITE names a checkout's test-suite folder.
SUITE ?=
conformance: build ## run the Socket.IO protocol test suite (SUITE=path/to/socket.io-protocol/test-suite)
	@test -n "$(SUITE)" || { echo "make conformance SUITE=path/to/socket.io-protocol/test-suite"; exit 2; }
	cd $(SUITE) && npm ci --no-audit --no-fund --loglevel=error
	@dir=$$(mktemp -d); \
	  (cd $$dir && DEVICE_SYNC__LOG__LEVEL=warn $(abspath $(TARGET_DIR))/release/device-sync conformance & echo $$! > $$dir/pid); \
	  sleep 1; \
	  (cd $(SUITE) && npx mocha test-suite.js); status=$$?; \
	  kill $$(cat $$dir/pid); rm -rf $$dir; exit $$status


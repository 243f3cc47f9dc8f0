# device-sync: the commands a developer needs. `make help` lists them.

CARGO ?= cargo

.PHONY: help run test lint fmt build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: ## run the server on the embedded SQLite default (./data, port 8080)
	$(CARGO) run --release --bin device-sync -- serve

test: ## run every test (unit and integration)
	$(CARGO) test --workspace

lint: ## formatting and clippy, warnings as errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

build: ## build the release binary (target/release/device-sync)
	$(CARGO) build --release --bin device-sync

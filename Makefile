# The two commands: `make run` starts Hearth, `make test` runs every test.
.PHONY: run test lint bench bench-local bench-knowledge

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	bash scripts/check-client-deps.sh

bench:
	bash bench/run.sh

bench-local:
	bash bench/local.sh

bench-knowledge:
	bash bench/knowledge.sh

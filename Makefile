# The two set-up commands are `make run` and `make test` (see README.md).
.PHONY: run test stop bench setup

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

stop:
	bash scripts/cluster.sh stop demo

bench:
	bash scripts/bench.sh

setup:
	bash scripts/setup.sh

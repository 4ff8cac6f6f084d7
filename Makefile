# The two set-up commands are `make run` and `make test` (see README.md).
.PHONY: run test stop bench setup test-citus bench-citus package

# `make test PG=16` (or 18) builds and tests against that PostgreSQL instead of Debian's 15.
PG ?= 15

run:
	bash scripts/run.sh

test:
	PG_MAJOR=$(PG) bash scripts/test.sh

stop:
	bash scripts/cluster.sh stop demo

bench:
	bash scripts/bench.sh

setup:
	bash scripts/setup.sh

# Needs Citus built into the PostgreSQL the project uses (README, "Citus").
test-citus:
	bash scripts/test-citus.sh

# Needs Citus, as test-citus does.
bench-citus:
	bash scripts/bench-citus.sh

# A Debian package (.deb) for the system PostgreSQL 15; prints its path last.
package:
	bash scripts/package.sh

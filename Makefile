# The two commands of the README: `make demo` and `make test`. Both build .venv first.
# `make test` runs the suite in two worker processes (pytest-xdist; a test file stays on
# one worker, each worker starts its own Kafka and PostgreSQL): most tests wait on
# brokers, processes and sockets, so two workers finish in about two thirds of the time.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-processes test lint bench images venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nrm demo
	$(BIN)/nrm demo --cross-border

# The same two demos with every piece its own OS process on Apache Kafka (each country
# its own broker): needs Java 17 and Maven for Kafka's jars (deploy/fetch-kafka.sh).
demo-processes: $(STAMP)
	bash deploy/fetch-kafka.sh
	$(BIN)/nrm demo --processes
	$(BIN)/nrm demo --cross-border --processes

test: $(STAMP)
	bash deploy/test-services.sh
	npm ci --prefix deploy/ajv --no-audit --no-fund --silent
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=25

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/nrm bench --quick

# The container images, built offline with podman (deploy/images.py).
images: $(STAMP)
	bash deploy/fetch-kafka.sh
	bash deploy/ensure-containers.sh
	$(BIN)/python deploy/images.py build

clean:
	rm -rf $(VENV) .nrm-data results deploy/.images

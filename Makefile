# Two commands matter: `make demo` and `make test`. Both install what is missing (system
# packages with apt, the virtualenv with pip), start the project's own PostgreSQL cluster
# and migrate it; both are idempotent.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PGVER  := 15
APT_PACKAGES := postgresql-$(PGVER) postgresql-$(PGVER)-postgis-3 postgresql-$(PGVER)-pgrouting
# the replicated cluster (gis-service cluster up, docs/scale.md): Patroni and its etcd
CLUSTER_PACKAGES := patroni etcd-server etcd-client
# the browser the page tests drive, a CJK font for its screenshots, npm for the map libraries
BROWSER_PACKAGES := chromium fonts-noto-cjk
WEB    := gis_service/web

.PHONY: demo test setup system venv assets db lint serve bench bench-valhalla-env clean

# the server and, beside it, the notification sender (gis-service notify run)
demo: setup
	$(BIN)/gis-service demo
	$(BIN)/gis-service serve --notify

test: setup
	$(BIN)/ruff check gis_service tests benchmarks notebooks
	$(BIN)/ruff format --check gis_service tests benchmarks notebooks
	$(BIN)/python -m pytest

setup: system venv assets db

system:
	@if [ ! -f /usr/share/postgresql/$(PGVER)/extension/postgis.control ] \
	 || [ ! -f /usr/share/postgresql/$(PGVER)/extension/pgrouting.control ] \
	 || [ ! -x /usr/lib/postgresql/$(PGVER)/bin/pg_ctl ]; then \
	  echo "installing $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@if [ ! -x /usr/bin/patroni ] || [ ! -x /usr/bin/etcd ] || [ ! -x /usr/bin/etcdctl ]; then \
	  echo "installing $(CLUSTER_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(CLUSTER_PACKAGES); \
	fi
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/opentype/noto ] \
	 || ! command -v npm >/dev/null; then \
	  echo "installing $(BROWSER_PACKAGES) (and npm if missing)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(BROWSER_PACKAGES) \
	    $$(command -v npm >/dev/null || echo npm); \
	fi

venv: $(STAMP)

# the compiled isochrone kernel (setup.py) is rebuilt when its source changes
$(STAMP): pyproject.toml setup.py gis_service/access/_band.c
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

# Leaflet and its plugins from the npm registry, served by our own server (never a CDN)
assets: $(WEB)/node_modules/.installed

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --silent
	@touch $@

db: venv
	$(BIN)/gis-service db up
	$(BIN)/gis-service db migrate

serve: setup
	$(BIN)/gis-service serve

bench: setup bench-valhalla-env
	$(BIN)/python benchmarks/locate.py
	$(BIN)/python benchmarks/report_load.py
	$(BIN)/python benchmarks/stats.py
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python benchmarks/access.py
	$(BIN)/python benchmarks/tiles.py
	$(BIN)/python benchmarks/mobile.py

# Valhalla beside our isochrones (benchmarks/isochrones.py): its own Python 3.12 virtualenv
bench-valhalla-env:
	bash benchmarks/valhalla_env.sh

lint: venv
	$(BIN)/ruff check gis_service tests benchmarks notebooks
	$(BIN)/ruff format --check gis_service tests benchmarks notebooks

clean:
	-$(BIN)/gis-service db down
	rm -rf $(VENV) .var

# Dogear: `make run` serves the app, `make test` runs the whole suite (`make test-faults`
# adds the fault and attack suite's process-level tests).
# Both bootstrap everything they need on a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
HTMX   := node_modules/htmx.org/dist/htmx.min.js

## The tools that install and check the dependencies live in .tools, a virtual
## environment of their own made with $(PYTHON) and filled from PyPI, pinned here.
## Bump a version by editing it; the next make installs it.
TOOLS             := .tools
UV_VERSION        := 0.13.9
PIP_AUDIT_VERSION := 2.10.1
UV_STAMP          := $(TOOLS)/.uv-$(UV_VERSION)
PIP_AUDIT_STAMP   := $(TOOLS)/.pip-audit-$(PIP_AUDIT_VERSION)
# uv uses $(PYTHON) for .venv and never downloads a Python of its own.
UV := UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=$(VENV) $(TOOLS)/bin/uv

export DOGEAR_INSTANCE_PATH ?= $(CURDIR)/instance

.PHONY: run test test-postgres test-faults lint format bench bench-quick setup lock audit clean

$(UV_STAMP):
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	echo '*' > $(TOOLS)/.gitignore
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'
	rm -f $(TOOLS)/.uv-*
	touch $@

## Set-up: .venv holds exactly the Python packages uv.lock pins (hashes checked),
## with the dev extras and the project itself installed editable; then the
## front-end files from the npm registry copied under static/vendor.
## --locked stops with "the lockfile needs to be updated" when pyproject.toml's
## dependencies changed but uv.lock didn't; run `make lock` then.
$(BIN)/dogear: pyproject.toml uv.lock $(UV_STAMP)
	$(UV) sync --locked --compile-bytecode --extra dev --python $(PYTHON)
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

static/vendor/htmx.min.js: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp $(HTMX) $@

setup: $(BIN)/dogear static/vendor/htmx.min.js

## Re-resolve uv.lock after editing pyproject.toml's dependencies (keeps every
## other pin); `make lock LOCK_ARGS="--upgrade-package flask"` moves one package.
lock: $(UV_STAMP)
	$(UV) lock $(LOCK_ARGS)

run: setup
	$(BIN)/dogear db upgrade
	$(BIN)/dogear posts load-demo
	$(BIN)/dogear serve --bind 127.0.0.1:$(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## The whole suite but the fault suite's process-level tests (marked faults_process:
## gunicorn, kill -9, concurrent importers), which `make test-faults` runs.
## PYTEST_ARGS="-k foo" narrows it; a -m of its own replaces the one here.
NOT_PROCESS := -m "not faults_process"
## Test files run TEST_WORKERS at a time (pytest-xdist; a file stays on one worker, so
## its module fixtures are built once). TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: setup lint
	$(BIN)/python -m pytest $(PARALLEL) $(NOT_PROCESS) $(PYTEST_ARGS)

## The same suite against PostgreSQL (DOGEAR_TEST_POSTGRES_URL, default the local
## server), leaving out what is about SQLite's internals.
test-postgres: setup
	DOGEAR_TEST_DATABASE=postgresql $(BIN)/python -m pytest $(PARALLEL) $(NOT_PROCESS) \
	    $(PYTEST_ARGS)

## The fault and attack suite (tests/faults, one module per concern; see
## docs/security.md): all of it on SQLite, real processes included (gunicorn with two
## workers, kill -9, concurrent importers; the two-host tests use PostgreSQL and Redis),
## then its process-level tests on PostgreSQL. `make test` and `make test-postgres`
## already run the rest of tests/faults, so CI passes FAULTS_ARGS='-m faults_process'.
test-faults: setup
	$(BIN)/python -m pytest tests/faults $(FAULTS_ARGS) $(PYTEST_ARGS)
	DOGEAR_TEST_DATABASE=postgresql $(BIN)/python -m pytest tests/faults -m faults_process \
	    $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-quick: setup
	$(BIN)/python bench/run.py --quick $(BENCH_ARGS)

## Known vulnerabilities in both locks: pip-audit (pinned above, into .tools) on
## every package uv.lock pins, all extras, against PyPI's advisory data; npm audit
## on package-lock.json. A finding (or a broken audit) fails. When an advisory
## service can't be reached or can't answer, it says which lock went unaudited,
## in a WARNING, and that lock doesn't fail the target.
define AUDIT_PY
import json, os, re, subprocess, sys

NET = re.compile(r"ConnectionError|ProxyError|SSLError|Max retries|NameResolution|"
                 r"Temporary failure|timed out|Timeout|unreachable|refused|"
                 r"ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN", re.I)
status = 0

def say(msg):
    print(msg, flush=True)

def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)

def python_lock():
    global status
    say("== Python: pip-audit " + os.environ["PIP_AUDIT_VERSION"] + " on uv.lock")
    if not os.path.exists(os.environ["PIP_AUDIT_STAMP"]):
        p = run([os.environ["TOOLS_PIP"], "install", "--quiet", "--disable-pip-version-check",
                 "pip-audit==" + os.environ["PIP_AUDIT_VERSION"]])
        if p.returncode:
            say(p.stderr.strip()[-800:])
            say("audit: WARNING: could not install pip-audit from PyPI (offline?); "
                "uv.lock was NOT audited")
            return
        open(os.environ["PIP_AUDIT_STAMP"], "w").close()
    p = run([os.environ["PIP_AUDIT"], "--format", "json", "--progress-spinner", "off",
             "--disable-pip", "--require-hashes", "--requirement", os.environ["AUDIT_REQS"]])
    try:
        deps = json.loads(p.stdout)["dependencies"]
    except (ValueError, KeyError):
        lines = p.stderr.strip().splitlines() or ["(no output)"]
        if NET.search(p.stderr):
            say("  " + lines[-1][:400])
            say("audit: WARNING: PyPI's vulnerability service can't be reached (offline?); "
                "uv.lock was NOT audited")
        else:
            say("\n".join(lines[-30:]))
            say("audit: ERROR: pip-audit failed (see above)")
            status = 1
        return
    vulns = [(d, v) for d in deps for v in d.get("vulns", [])]
    skipped = [d for d in deps if "skip_reason" in d]
    for d, v in vulns:
        fix = ", ".join(v.get("fix_versions") or []) or "none yet"
        say(f"  {d['name']} {d['version']}: {v['id']} {' '.join(v.get('aliases') or [])}"
            f" (fixed in: {fix})")
    if vulns:
        status = 1
        say(f"audit: FAILED: {len(vulns)} known vulnerabilities in "
            f"{len({d['name'] for d, _ in vulns})} of the packages uv.lock pins")
    audited = len(deps) - len(skipped)
    if audited and not vulns:
        say(f"audit: ok: no known vulnerabilities in the {audited} packages uv.lock pins")
    if skipped and not audited:
        say(f"audit: WARNING: PyPI's vulnerability service answered for none of the "
            f"{len(deps)} packages ({skipped[0]['skip_reason']}); uv.lock was NOT audited")
    elif skipped:
        say(f"audit: WARNING: {len(skipped)} of {len(deps)} packages were NOT audited: "
            + "; ".join(d["skip_reason"] for d in skipped))

def npm_lock():
    global status
    say("== npm: npm audit on package-lock.json")
    p = run(["npm", "audit", "--package-lock-only", "--json"])
    try:
        report = json.loads(p.stdout)
    except ValueError:
        report = {"error": {}, "message": p.stderr.strip()[-800:]}
    if "error" in report:
        message = report.get("message") or json.dumps(report["error"])
        say("  " + message)
        if report.get("statusCode") or NET.search(message) or "audit endpoint" in p.stderr:
            say("audit: WARNING: the npm registry's audit service can't be reached or "
                "can't answer; package-lock.json was NOT audited")
        else:
            say("audit: ERROR: npm audit failed (see above)")
            status = 1
        return
    found = report.get("vulnerabilities") or {}
    for name, v in sorted(found.items()):
        titles = "; ".join(x["title"] for x in v.get("via", []) if isinstance(x, dict))
        say(f"  {name} {v.get('range', '')}: {v.get('severity')} {titles}")
    if found:
        status = 1
        say(f"audit: FAILED: {len(found)} vulnerable packages in package-lock.json "
            "(`npm audit` for details)")
    else:
        total = report.get("metadata", {}).get("dependencies", {}).get("total", "?")
        say(f"audit: ok: no known vulnerabilities in the {total} packages "
            "package-lock.json pins")

python_lock()
npm_lock()
sys.exit(status)
endef
export AUDIT_PY

audit: $(UV_STAMP)
	@$(UV) export --locked --all-extras --no-emit-project --format requirements-txt \
	    --quiet --output-file $(TOOLS)/audit-requirements.txt
	@TOOLS_PIP=$(TOOLS)/bin/pip PIP_AUDIT=$(TOOLS)/bin/pip-audit \
	    PIP_AUDIT_VERSION=$(PIP_AUDIT_VERSION) PIP_AUDIT_STAMP=$(PIP_AUDIT_STAMP) \
	    AUDIT_REQS=$(TOOLS)/audit-requirements.txt $(TOOLS)/bin/python -c "$$AUDIT_PY"

clean:
	rm -rf $(VENV) $(TOOLS) node_modules static/vendor dogear.egg-info

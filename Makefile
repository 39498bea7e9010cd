# segbench: `make train` then `make test`. Both create .venv (if missing), install requirements.txt and the project
# itself in editable mode (console scripts segbench-train, -validate, -benchmark, -predict).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install install-mmseg install-tracking install-deploy install-dev train test lint format docs clean-logs slurm-up slurm-down

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .   # segbench-train & co. (segbench_cli.py)
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# $(call extra,NAME,FILES): target install-NAME pip-installs the last of FILES (it may include the others with -r)
# once per content of FILES, recorded in the stamp $(VENV)/.installed-NAME-<checksum of FILES>.
define extra
$(1)_STAMP := $(VENV)/.installed-$(1)-$(shell cat $(2) | cksum | cut -d' ' -f1)
$$($(1)_STAMP): $(2) $$(STAMP)
	$$(PY) -m pip install -q --disable-pip-version-check -r $(lastword $(2))
	touch $$@

install-$(1): $$($(1)_STAMP)
endef

# Optional MMSegmentation extra (model=mmseg): small (~15 s), installed for the test suite.
$(eval $(call extra,mmseg,requirements-mmseg.txt))

# Optional tracking extra (logger=mlflow|wandb, hparams_search=...): ~100 s from a package mirror, installed for tests.
$(eval $(call extra,tracking,requirements-tracking.txt))

# Optional deploy extra (backend=onnxruntime|openvino, benchmark.py export): ONNX Runtime, OpenVINO, NNCF (~1 min),
# installed for the test suite.
$(eval $(call extra,deploy,requirements-onnx.txt requirements-openvino.txt))

# Lint/format/docs tools (ruff, MkDocs + Material + mkdocstrings).
$(eval $(call extra,dev,requirements-dev.txt))

# Unet with an ImageNet-pretrained EfficientNet-Lite0 encoder fine-tuned on the embedded CamVid subset (data/camvid).
train: install
	$(PY) main.py experiment=camvid_embedded

# The full test suite on CPU (what .ci/run calls) in TEST_WORKERS pytest-xdist processes of one intra-op thread
# each (default: the machine's logical CPUs); prints the 10 slowest tests.
TEST_WORKERS ?= $(shell nproc)
test: install install-mmseg install-tracking install-deploy
	$(PY) -m pytest -q tests -n $(TEST_WORKERS) --dist loadgroup --durations=10

# ruff lint + format check (what .ci/run calls before the tests); `make format` rewrites in place.
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The documentation site (docs/, mkdocs.yml) built with --strict into site/.
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# A real single-node SLURM on this machine (Debian, root) for hydra/launcher=slurm_local_cpu and the SLURM tests.
slurm-up:
	scripts/slurm_local.sh up

slurm-down:
	scripts/slurm_local.sh down

clean-logs:
	rm -rf logs outputs multirun

# segbench: `make train` then `make test`. Both create .venv (if missing) and install requirements.txt.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: install train test clean-logs

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Unet-resnet18 on the embedded CamVid subset (data/camvid), bf16 + channels_last on CPU, ~5 min on 2 cores.
train: install
	$(PY) main.py experiment=camvid_embedded

# The full test suite on CPU (what .ci/run calls).
test: install
	$(PY) -m pytest -q tests

clean-logs:
	rm -rf logs outputs multirun

# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ZOO    := $(VENV)/bin/zoo
# first-party plugins: every folder of plugins/ with a pyproject.toml, installed like a third party's
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint docs clean

install: $(STAMP)

# torch/torchvision are pinned to the releases this machine keeps on disk (pip takes them from there)
$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -q -e ".[test,plot]" $(addprefix -e ,$(PLUGIN_DIRS))
	touch $@

demo: $(STAMP)
	$(ZOO) list
	$(ZOO) info fastervit-2
	$(ZOO) plugins

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

docs: $(STAMP)
	$(PY) -m zoo.modeltable > docs/models.md

clean:
	rm -rf $(VENV) build dist *.egg-info

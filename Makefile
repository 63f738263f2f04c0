# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ZOO    := $(VENV)/bin/zoo
# first-party plugins: every folder of plugins/ with a pyproject.toml, installed like a third party's
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint docs clean gpu-check

install: $(STAMP)

# torch/torchvision are pinned to the releases this machine keeps on disk (pip takes them from there)
$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -q -e ".[test,plot]" $(addprefix -e ,$(PLUGIN_DIRS))
	touch $@

# the main job on an embedded default: no download, CPU only, a generated image folder
DEMO_MODEL := efficientmod-xxs
DEMO_DATA  := .demo/images

demo: $(STAMP)
	$(ZOO) list
	$(ZOO) info $(DEMO_MODEL)
	test -d $(DEMO_DATA) || $(ZOO) demo-data $(DEMO_DATA) --images 32 --classes 8
	@echo "== zoo eval with random weights (no download here): the pipeline, not the paper's accuracy"
	$(ZOO) eval $(DEMO_MODEL) --dataset folder:$(DEMO_DATA) --no-pretrained --batch-size 16 --workers 2
	$(ZOO) bench $(DEMO_MODEL) --device cpu --batch-size 16 --warmup 2 --repeats 5
	$(ZOO) verify $(DEMO_MODEL)
	$(ZOO) report -o .demo/report
	@echo "== the report of these runs: open .demo/report/index.html in a browser (works offline)"

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n auto --dist loadscope  # one worker per core; a module's tests (and its fixtures) stay together

# on one CUDA GPU, under 8 minutes: eval vs forward img/s, zoo bench vs timm's loop, --compile, peak memory
# (docs/benchmarks.md, "GPU check"); exit 2 without a GPU. `$(PY) benchmarks/gpu_check.py --dry-run` rehearses it on the CPU
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py

docs: $(STAMP)
	$(PY) -m zoo.report.modeltable > docs/models.md

clean:
	rm -rf $(VENV) build dist *.egg-info

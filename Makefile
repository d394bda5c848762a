# Set-up and the two everyday commands. Everything installs into .venv on first use.
#   make train   -> train the default GPT on the Python standard library
#   make test    -> run the test suite (including the slow end-to-end runs)
#   make lint    -> ruff (lint and format) and the import layers (.importlinter)
#   make docs    -> the documentation site into site/ (mkdocs build --strict)
# A CPU-only Linux machine can take PyTorch's small CPU build with
#   make train TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin
# transformers, for the tests against Hugging Face GPT-2 and BERT models (in subprocesses), lives outside
# the venv: installed there, torchmetrics would import it (about 1 s) in every process.
TEST_DEPS := .test-deps/transformers

.PHONY: install train test lint docs clean

install: $(VENV)/.installed

# PYTHONWARNINGS silences setuptools' notice on every editable install (a folder named like the
# package shadows it: here that folder is the package).
# A torch that $(PYTHON) already has (CPU or CUDA build) is used as it is: the venv then sees
# the system site-packages. Otherwise torch is installed first, before anything that needs it.
$(VENV)/.installed: pyproject.toml
	if $(PYTHON) -c "import torch" 2>/dev/null; then $(PYTHON) -m venv --system-site-packages $(VENV); else $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(TORCH_INDEX)
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

train: install
	$(BIN)/python -m framework.train $(ARGS)

$(TEST_DEPS)/.installed:
	$(BIN)/python -m pip install --quiet --target $(TEST_DEPS) "transformers>=4.40"
	touch $@

test: install $(TEST_DEPS)/.installed
	$(BIN)/python -m pytest $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The two variables silence MkDocs 2 notices from Material and a plugin; warnings still fail the build.
docs: install
	NO_MKDOCS_2_WARNING=true DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) .test-deps logs .pytest_cache site

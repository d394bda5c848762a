# Set-up and the two everyday commands. Everything installs into .venv on first use.
#   make train   -> train the default GPT on the Python standard library
#   make test    -> run the test suite (including the slow end-to-end runs)
# A CPU-only Linux machine can take PyTorch's small CPU build with
#   make train TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin

.PHONY: install train test clean

install: $(VENV)/.installed

# A torch that $(PYTHON) already has (CPU or CUDA build) is used as it is: the venv then sees
# the system site-packages. Otherwise torch is installed first, before anything that needs it.
$(VENV)/.installed: pyproject.toml
	if $(PYTHON) -c "import torch" 2>/dev/null; then $(PYTHON) -m venv --system-site-packages $(VENV); else $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

train: install
	$(BIN)/python -m framework.train $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) logs .pytest_cache

# make serve: set up and start the server.  make test: set up and run every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# tcmalloc makes torch on CPU about 1.5x faster here (docs/benchmarks.md); used when installed.
TCMALLOC := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
                                   /usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4 /usr/lib64/libtcmalloc_minimal.so.4))
ifneq ($(TCMALLOC),)
export LD_PRELOAD := $(TCMALLOC)
endif
# A local MNIST copy beside the checkout (as in this workplace) saves the download.
ifneq ($(wildcard ../shared/data/mnist/t10k-labels-idx1-ubyte.gz),)
export CONVSCOPE_MNIST_DIR ?= $(abspath ../shared/data/mnist)
endif

# With bytecode caching off (some environments set PYTHONDONTWRITEBYTECODE), every test run compiles the project
# and rewrites every test file's asserts again: about 5 s of each run here.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup vendor serve demo test quick bench weights clean

setup: $(STAMP)

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	$(MAKE) vendor
	touch $@

# three.js and elkjs (the layer graph's layout) from npm into the package's static files (git-ignored; a built
# wheel carries them). OrbitControls
# imports the bare name 'three', which browsers resolve only through an import map (an inline script, which our
# Content-Security-Policy forbids), so its import is pointed at the file beside it.
VENDOR := src/convscope/server/static/vendor/three
vendor:
	npm ci --no-audit --no-fund --silent
	mkdir -p $(VENDOR)
	cp node_modules/three/build/three.module.js node_modules/three/build/three.core.js node_modules/three/LICENSE $(VENDOR)/
	sed "s#from 'three'#from './three.module.js'#" node_modules/three/examples/jsm/controls/OrbitControls.js \
		> $(VENDOR)/OrbitControls.js
	mkdir -p $(VENDOR)/../elk
	cp node_modules/elkjs/lib/elk.bundled.js node_modules/elkjs/LICENSE.md $(VENDOR)/../elk/

serve: setup
	$(BIN)/convscope serve

demo: setup
	$(BIN)/convscope explain --sample 7 --seed 0 --out explain-out

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

# The quick loop while developing: no browsers, real servers, training processes, PostgreSQL or fresh interpreters.
quick: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/inspect_latency.py
	$(BIN)/python bench/batch_predict.py
	$(BIN)/python bench/preprocess_latency.py
	$(BIN)/python bench/http_predict.py  # its concurrent part needs wrk (apt-get install wrk)
	$(BIN)/python bench/ui_latency.py    # needs chromium (apt-get install chromium)
	$(BIN)/python bench/ui_photo_latency.py
	$(BIN)/python bench/job_events_latency.py

# Re-create the packaged default weights (the commands are recorded in each checkpoint's metadata).
WEIGHTS := src/convscope/models/weights
weights: setup
	$(BIN)/convscope train --model mnist_cnn --epochs 6 --batch-size 128 --lr 5e-3 --augment --seed 0 \
		--threads 2 --out $(WEIGHTS)/mnist_cnn.safetensors
	$(BIN)/convscope train --model mnist_mlp --epochs 15 --batch-size 128 --lr 1e-2 --optimizer adamw \
		--weight-decay 0.05 --seed 0 --threads 2 --out $(WEIGHTS)/mnist_mlp.safetensors

clean:
	rm -rf $(VENV) explain-out build dist src/*.egg-info node_modules $(VENDOR)

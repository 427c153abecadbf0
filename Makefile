# make test   : create .venv if missing, install rnnkit with its test extras (and Chromium), run the suite
# make demo   : same set-up, then run the main job (DEMO_MINUTES sets its length)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_MINUTES ?= 4

.PHONY: test test-slow test-browser browser demo bench bench-quality speech-data clipart-data clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# the CPU wheel first, so nothing below can pull a CUDA build (PyPI's Linux torch==2.13.0
	# is the CUDA one; PyTorch's CPU index has 2.13.0+cpu, which pip prefers where reachable);
	# torch alone from that index, its own requirements with rnnkit's from the registries
	$(PY) -m pip install -q --no-deps torch==2.13.0 --extra-index-url https://download.pytorch.org/whl/cpu
	$(PY) -m pip install -q -e '.[test,export]'
	touch $(STAMP)

# the suite, then rnnkit view driven in headless Chromium (Debian's, installed by `browser`)
test: $(STAMP) browser
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m slow tests/test_view_browser.py

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

demo: $(STAMP)
	$(VENV)/bin/rnnkit demo --minutes $(DEMO_MINUTES)

bench: $(STAMP)
	$(PY) benchmarks/speed.py
	$(PY) benchmarks/options_speed.py

bench-quality: $(STAMP)
	$(PY) benchmarks/quality_lm.py --minutes 3 --data shakespeare fortunes pd1998-text
	$(PY) benchmarks/parity_lm.py --minutes 30

# espeak-ng's synthetic voices for rnnkit train recognize --data spoken-digits (Debian, root)
speech-data:
	apt-get install -y espeak-ng

# openclipart's titled drawings and rsvg-convert for rnnkit train image-to-text --data openclipart
# (Debian, root; about 170 MB installed)
clipart-data:
	apt-get install -y openclipart-svg librsvg2-bin

# headless Chromium from Debian's packages (root; about 2 minutes with the apt-get update, once)
# for the browser test of rnnkit view, tests/test_view_browser.py, which `make test` runs
browser:
	command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)

test-browser: $(STAMP) browser
	$(PY) -m pytest -q -m slow tests/test_view_browser.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

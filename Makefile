# Quick start: `make demo` (set up, then run the main job) and `make test` (set up, then all tests).
VENV := .venv
BIN := $(VENV)/bin
DEMO_MODEL ?= zoo:mbv2-w0.35-r144
DEMO_PLATFORM ?= stm32f746

.PHONY: setup demo test pytest robot wheel clean
setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/msfsim search $(DEMO_MODEL) --platform $(DEMO_PLATFORM)

test: setup pytest robot wheel

pytest:
	$(BIN)/python -m pytest

# Robot Framework regression suites (report in build/robot, xunit for CI)
robot:
	$(BIN)/python -m robot --outputdir build/robot --xunit xunit.xml robot/

# The wheel installed in a fresh venv outside the checkout: boards, doctor, measured search,
# --emit-c + make (everything msfsim needs at run time is package data)
wheel:
	@bash scripts/check_wheel.sh

clean:
	rm -rf build out .pytest_cache .hypothesis

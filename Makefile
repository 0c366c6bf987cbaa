# The arm64 Lambda build: one cargo build of every function the template names.
#
#   make lambdas    every function of template.yaml, release profile, for arm64 (cargo-lambda + zig):
#                   $(LAMBDA_DIR)/<binary>/bootstrap, what `cargo lambda deploy` uploads
#
# `sam build` runs `make build-<LogicalId>` here once per function (template.yaml: BuildMethod
# makefile, WorkingDirectory the project root). The first call compiles every function at once, so
# each dependency is compiled once, with one feature set; the later calls find cargo's output up to
# date and only copy their function's binary into SAM's ARTIFACTS_DIR.

TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
LAMBDA_DIR := $(TARGET_DIR)/lambda
# The cargo binary of each function: Metadata.BuildProperties.Binary in template.yaml.
BINARIES := $(shell sed -n 's/^ *Binary: *//p' template.yaml)
# The binary of the function with logical id $(1): the first Binary line under `  $(1):`.
binary_of = $(shell awk -v id='$(1)' '$$0 == "  " id ":" { found = 1; next } found && /^  [^ ]/ { exit } found && $$1 == "Binary:" { print $$2; exit }' template.yaml)

.PHONY: lambdas
lambdas:
	cargo lambda build --release --arm64 --lambda-dir $(LAMBDA_DIR) $(addprefix --package ,$(BINARIES))

build-%: lambdas
	@test -n "$(call binary_of,$*)" || { echo "template.yaml names no Binary for $*" >&2; exit 1; }
	cp $(LAMBDA_DIR)/$(call binary_of,$*)/bootstrap $(ARTIFACTS_DIR)/bootstrap

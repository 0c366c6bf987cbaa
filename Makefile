# The arm64 Lambda build: one cargo build of every function the template names.
#
#   make lambdas    every function crate (functions/*), release profile, for arm64 (cargo-lambda + zig):
#                   $(LAMBDA_DIR)/<binary>/bootstrap, what `cargo lambda deploy` uploads
#
# `sam build` runs `make build-<LogicalId>` here once per function (template.yaml: BuildMethod
# makefile, WorkingDirectory the project root). The first call compiles every function at once, so
# each dependency is compiled once, with one feature set; the later calls find cargo's output up to
# date and only copy their function's binary into SAM's ARTIFACTS_DIR.

TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
LAMBDA_DIR := $(TARGET_DIR)/lambda
# The cargo binary of each function: every crate under functions/ is one.
BINARIES := $(notdir $(wildcard functions/*))
# The binary of the function with logical id $(1): the id without "Function", in kebab case
# (OrderApiFunction -> order-api). A template rule holds Metadata.BuildProperties.Binary to it.
binary_of = $(shell echo '$(1)' | sed -E 's/Function$$//; s/([a-z0-9])([A-Z])/\1-\2/g' | tr A-Z a-z)

.PHONY: lambdas
lambdas:
	cargo lambda build --release --arm64 --lambda-dir $(LAMBDA_DIR) $(addprefix --package ,$(BINARIES))

build-%: lambdas
	@test -f $(LAMBDA_DIR)/$(call binary_of,$*)/bootstrap || { echo "no function crate functions/$(call binary_of,$*) for $*" >&2; exit 1; }
	cp $(LAMBDA_DIR)/$(call binary_of,$*)/bootstrap $(ARTIFACTS_DIR)/bootstrap

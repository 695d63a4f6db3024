# The two commands of the README:
#   make run    builds srekit and starts `srekit serve --demo` on the embedded SQLite database
#   make test   installs what the tests need, starts PostgreSQL, runs every test
.PHONY: run test build fuzz clean

GO ?= go
BIN := bin/srekit
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/srekit

run: build
	./$(BIN) serve --demo $(ARGS)

test:
	./scripts/test.sh

# make fuzz FUZZTIME=30s runs every fuzz target for a while (not part of `make test`;
# there the seed corpora run as ordinary tests).
FUZZTIME ?= 20s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin

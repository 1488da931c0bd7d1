# shoal — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
PROTO_FILES := shoalpb/secret.proto shoalpb/network.proto shoalpb/types.proto shoalpb/control.proto shoalpb/dispatcher.proto shoalpb/ca.proto
# Tests run with the race detector; the whole suite stays well inside 15 min on 2 cores.
TEST_FLAGS ?= -race -timeout 14m

.DEFAULT_GOAL := help
.PHONY: help deps build test unit lint proto proto-check bench soak bench-failover bench-leader-failover bench-scale bench-scale-100k bench-watch demo lab-up lab-down lab-status lab-dind lab-dind-down clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

deps: ## install what is missing (containerd, runc, busybox-static, iproute2, protoc) via apt-get
	@bash deploy/install-deps.sh

build: ## build shoal-manager, shoal-agent, shoalctl, shoal-lab and shoal-lab-registry into bin/
	$(GO) build -o $(BIN)/shoal-manager ./cmd/manager
	$(GO) build -o $(BIN)/shoal-agent ./cmd/agent
	$(GO) build -o $(BIN)/shoalctl ./cmd/ctl
	$(GO) build -o $(BIN)/shoal-lab ./cmd/lab
	$(GO) build -o $(BIN)/shoal-lab-registry ./cmd/lab-registry

test: deps proto-check lint ## everything CI runs: generated-code drift, lint, all tests (root: containerd and lab tests too)
	$(GO) test $(TEST_FLAGS) ./...

unit: ## the tests alone, no install, no lint
	$(GO) test $(TEST_FLAGS) ./...

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

$(BIN)/tools/protoc-gen-go $(BIN)/tools/protoc-gen-go-grpc: go.mod
	$(GO) build -o $(BIN)/tools/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

# protoc comes from Debian's protobuf-compiler; the Go generators are pinned
# by the tool lines in go.mod.
proto: deps $(BIN)/tools/protoc-gen-go $(BIN)/tools/protoc-gen-go-grpc ## regenerate the Go code from the .proto files
	cd proto && protoc -I . -I /usr/include \
		--plugin=protoc-gen-go=../$(BIN)/tools/protoc-gen-go --plugin=protoc-gen-go-grpc=../$(BIN)/tools/protoc-gen-go-grpc \
		--go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative $(PROTO_FILES)
	@if [ -d raftstore/commandpb ]; then cd raftstore && protoc -I . -I /usr/include \
		--plugin=protoc-gen-go=../$(BIN)/tools/protoc-gen-go --go_out=. --go_opt=paths=source_relative commandpb/*.proto; fi

proto-check: proto ## fail when the committed generated code differs from `make proto`
	@if ! git diff --quiet -- proto raftstore/commandpb; then \
		echo "generated code is out of date: run 'make proto' and commit"; git diff --stat -- proto raftstore/commandpb; exit 1; fi

bench: ## the figures: scheduler, Raft, failover, agents, containerd benchmarks beside their baselines (report in bench.txt)
	@bash deploy/bench.sh

bench-scale: ## 1,000 simulated agents x 10,000 replicas, 5 runs: time to all running, sessions lost, tasks orphaned; then 3 leader kills: time until all 1,000 sessions are back
	go test -run '^$$' -bench 'BenchmarkManyAgents$$' -benchtime 5x -timeout 30m ./cmd/agent/
	go test -run '^$$' -bench 'BenchmarkManyAgentsReconnect$$' -benchtime 3x -timeout 30m ./cmd/agent/

bench-scale-100k: ## 5,000 simulated agents x 100,000 replicas through 3 Raft managers: time to all running, leader RSS, idle leader CPU (about 8 GiB)
	go test -run '^$$' -bench 'BenchmarkManyAgents100k$$' -benchtime 1x -timeout 60m ./cmd/agent/

bench-watch: ## 10,000 replicas: leader CPU of 10 waiting clients by Watch beside the old polling; 100 watchers during a 1,000-replica scale
	@bash deploy/bench-watch.sh

soak: build ## 3 managers + 20 agents on loopback, both cores busy, 5 minutes: no node may be declared down
	@bash deploy/soak.sh

demo: deps build ## a local multi-host lab: deploy a service, kill an agent host, show the failover
	$(BIN)/shoal-lab demo

bench-failover: deps build ## repeat kill → recover → restore on the lab; median and worst times
	$(BIN)/shoal-lab bench-failover

bench-leader-failover: deps build ## on the lab: 10 leader link cuts, then 10 leader kills; writes, re-sessions, 0 restarts
	$(BIN)/shoal-lab bench-failover --leader-cut
	$(BIN)/shoal-lab bench-failover --leader-kill

lab-up: deps build ## start the lab (3 managers, 3 agent hosts, a registry) and leave it running; LAB_UP_FLAGS=--managers-run-tasks makes the managers run tasks too
	$(BIN)/shoal-lab up $(LAB_UP_FLAGS)

lab-down: ## stop the lab and remove everything it made
	@if [ -x $(BIN)/shoal-lab ]; then $(BIN)/shoal-lab down; else $(GO) run ./cmd/lab down; fi

lab-dind: deps ## the Docker-in-Docker lab: its own Docker engine, 3 managers + 3 agent containers, a failover demo (left running)
	deploy/compose/lab-dind.sh up
	deploy/compose/lab-dind.sh demo

lab-dind-down: ## remove everything the Docker-in-Docker lab made (containers, networks, volumes, its engine)
	deploy/compose/lab-dind.sh down

lab-status: ## show the lab's hosts and processes
	$(BIN)/shoal-lab status

clean: ## remove build output
	rm -rf $(BIN)

# Every target runs from a fresh checkout. `make test` is what CI runs.
.PHONY: demo test check go-test vet image-test dag-test podman-setup bench fuzz build docs-check

demo: ## run the whole job once against the stand-in Looker (needs only Go)
	scripts/demo.sh

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/looker-rerun .

test: check image-test dag-test ## every test: Go (race), the image, the DAGs

check: vet docs-check go-test

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	go vet ./...

go-test:
	go test -race -count=1 ./...

podman-setup:
	scripts/podman-setup.sh

image-test: podman-setup
	scripts/image-test.sh

dag-test: image-test
	scripts/dag-test.sh

bench: ## the README's benchmark figures
	go test -run '^$$' -bench Rerun -benchtime 1x .

fuzz: ## each fuzz target for FUZZTIME (default 1m)
	for t in $$(go test -list '^Fuzz' ./... | grep '^Fuzz'); do \
		pkg=$$(grep -rl "func $$t(" --include='*_test.go' . | xargs dirname); \
		go test -run '^$$' -fuzz "^$$t$$" -fuzztime $${FUZZTIME:-1m} $$pkg || exit 1; \
	done

docs-check: ## README under 250 lines, every docs/ page linked from it, every -h setting in its table
	test $$(wc -l <README.md) -lt 250 || { echo "README.md: $$(wc -l <README.md) lines, want < 250"; exit 1; }
	for f in docs/*.md; do grep -q "($$f)" README.md || { echo "README.md does not link $$f"; exit 1; }; done
	for v in $$(go run . -h | awk '/^[A-Z][A-Z_]+ /{print $$1}'); do \
		grep -q "^| \`$$v\` |" README.md || { echo "README.md settings table lacks $$v"; exit 1; }; done

# looker-rerun container image.
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg REVISION=$(git rev-parse HEAD) -t looker-rerun .
#   docker run --rm --read-only --cap-drop=ALL \
#     -e LOOKERSDK_BASE_URL -e LOOKERSDK_CLIENT_ID -e LOOKERSDK_CLIENT_SECRET looker-rerun
#
# The build stage is the official Go image; GO_IMAGE lets an offline or mirrored build
# point at its own copy (scripts/image-test.sh imports one under this exact name).
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src

# Module download settings, for builds behind a proxy or mirror. Unset ARGs leave Go's
# defaults in place.
ARG GOPROXY
ARG GOSUMDB
ARG GOPRIVATE
ARG GONOSUMDB
ARG GONOPROXY
ARG GOINSECURE
ARG GOFLAGS

# Dependencies first: this layer stays cached until go.mod or go.sum changes.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
ARG VERSION=dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/looker-rerun .

# Runtime: the static binary and the CA bundle it needs to reach Looker over TLS, nothing
# else. No shell, no package manager, no writable path: it runs with --read-only and no
# capabilities. The user is numeric so Kubernetes runAsNonRoot can verify it.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="looker-rerun" \
      org.opencontainers.image.description="Re-runs failed Looker scheduled deliveries" \
      org.opencontainers.image.source="https://github.com/looker-rerun/looker-rerun" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/looker-rerun /looker-rerun
USER 65532:65532
ENTRYPOINT ["/looker-rerun"]

# syntax=docker/dockerfile:1
#
# Portcullis container image: one static binary on distroless, running as
# uid 65532 with no shell.
#
#   docker build --build-arg VERSION="$(git describe --tags --always)" -t portcullis .
#   docker run --rm -v "$PWD/etc:/etc/portcullis:ro" -p 8080:8080 portcullis
#
# The Helm chart in charts/portcullis runs it with a read-only root file
# system, /tmp and /var/lib/portcullis on volumes. There is no Docker engine
# in CI: .ci/rootfs-test.sh builds the binary exactly as below and runs it in
# a root file system holding only what this image holds.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /portcullis ./cmd/portcullis
# The SQLite store's default directory, owned by the runtime user so a
# volume mounted there starts out writable.
RUN mkdir -p /rootfs/var/lib/portcullis

# distroless static: CA certificates, tzdata, /tmp and an /etc/passwd with
# nonroot (65532); no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /portcullis /portcullis
COPY --from=build --chown=65532:65532 --chmod=0700 /rootfs/var/lib/portcullis /var/lib/portcullis
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/portcullis"]
CMD ["serve", "--config", "/etc/portcullis/config.yaml"]

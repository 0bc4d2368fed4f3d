# syntax=docker/dockerfile:1
# The one image of every Sbor component: `sbor <target>` (gateway, user, event, ticket,
# notification, operator, migrate, remind). A static binary on distroless, running as the
# image's nonroot user (65532), with nothing else in it: no shell, no package manager.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t sbor:dev .

ARG GO_VERSION=1.27.3

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/sbor ./cmd/sbor

FROM gcr.io/distroless/static-debian13:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="sbor" \
      org.opencontainers.image.description="Sbor event-ticketing platform: one binary, many targets" \
      org.opencontainers.image.source="https://github.com/sbor-dev/sbor" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/sbor /usr/local/bin/sbor
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/sbor"]
CMD ["help"]

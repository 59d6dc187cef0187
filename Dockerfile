# regoguard as a container image: a static binary (CGO_ENABLED=0) in a
# distroless image, run as a non-root user. From the repository root:
#
#   docker build --build-arg VERSION=v0.1.0 -t registry.example.com/regoguard:0.1.0 .
#
# The Kubernetes example (examples/kubernetes) runs this image.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version stamp that `regoguard version` and regoguard_build_info show;
# goreleaser sets the same variables (see .goreleaser.yaml).
ARG VERSION=dev
ARG REVISION=
ARG BUILD_TIME=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION} -X main.buildTime=${BUILD_TIME}" \
      -o /out/regoguard ./cmd/regoguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/regoguard /regoguard
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/regoguard"]

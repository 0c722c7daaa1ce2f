# The payments service: a static binary on a distroless base, as a non-root
# user. Build with `make image` (or `docker build --build-arg VERSION=... .`).
# `make image-check` builds the same binary with the same script
# (mk/build-static.sh) and runs it as this image would; the image itself is
# built only where a container engine runs.

# Build on the builder's own platform and cross-compile (cgo is off).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG TARGETOS
ARG TARGETARCH
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH VERSION=$VERSION sh mk/build-static.sh /out/payments

# distroless static: CA certificates, /etc/passwd with the nonroot user, no
# shell. The binary embeds the time zone database (PAYMENTS_TIMEZONE).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/payments /payments
# nonroot of the base image, by number so that runtimes that check for a
# non-root user without reading /etc/passwd accept it.
USER 65532:65532
# The API (PAYMENTS_ADDR, default :8080) and the admin listener the
# deployment may add (PAYMENTS_ADMIN_ADDR=:9090: back office, /metrics,
# pprof; never published to the internet). No HEALTHCHECK: orchestrators
# probe GET /healthz (liveness) and GET /readyz (readiness).
EXPOSE 8080 9090
ENTRYPOINT ["/payments"]
CMD ["serve"]

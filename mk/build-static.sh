#!/bin/sh
# The one recipe of the binary the container image ships: static (no cgo),
# -trimpath, the version stamped. The Dockerfile's build stage and
# `make image-check` both run this script, so they build the same binary
# (mk/image-check.sh also checks that the Dockerfile still calls it).
#
# usage: mk/build-static.sh OUTPUT
# VERSION is the stamped version (default: git describe, else "devel");
# GOOS and GOARCH pick another platform as usual.
set -eu
out=${1:?usage: mk/build-static.sh OUTPUT}
version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo devel)}
export CGO_ENABLED=0
unset GOFLAGS
exec go build -trimpath -ldflags "-X main.version=${version}" -o "$out" ./cmd/payments

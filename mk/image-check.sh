#!/usr/bin/env bash
# make image-check: what can be checked of the container image without a
# container engine. It builds the image's binary with the image's own recipe
# (mk/build-static.sh, which the Dockerfile runs), checks that it is static,
# built with CGO_ENABLED=0 and -trimpath and stamped with VERSION, then runs
# it as the image would: from an empty directory, as the image's user (uid
# 65532) when run by root, with nothing in its environment but its settings,
# on a scratch database of the PostgreSQL at IMAGE_CHECK_POSTGRES. It waits
# for /readyz to answer 200, stops it with SIGTERM and expects exit 0.
#
# Not checked here: the Dockerfile's base images, COPY and USER lines, and
# compose.yaml; those need a container engine (docker build, docker compose).
set -euo pipefail
cd "$(dirname "$0")/.."

server=${IMAGE_CHECK_POSTGRES:-postgres://postgres@127.0.0.1:5432}
version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo devel)}
image_uid=65532

fail() { echo "image-check: FAIL: $*" >&2; exit 1; }
step() { echo "image-check: $*"; }

# 1. The Dockerfile builds with mk/build-static.sh and nothing else, so the
#    binary checked below is the image's.
grep -Eq '^RUN .*sh mk/build-static\.sh /out/payments' Dockerfile ||
  fail "the Dockerfile's build stage no longer runs mk/build-static.sh /out/payments"
if grep -Eq 'go +build' Dockerfile; then
  fail "the Dockerfile runs go build itself: build through mk/build-static.sh so that image-check checks the same binary"
fi
grep -Eq '^COPY --from=build /out/payments /payments' Dockerfile ||
  fail "the Dockerfile no longer ships /out/payments"
grep -Eq "^USER ${image_uid}:${image_uid}\$" Dockerfile ||
  fail "the Dockerfile's user is not ${image_uid}:${image_uid}, which this check runs as"

work=$(mktemp -d)
pid=
db=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  if [ -n "$db" ] && command -v psql >/dev/null 2>&1; then
    psql -q -X "$server/postgres?sslmode=disable" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
      echo "image-check: could not drop the scratch database $db" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# 2. Build.
bin="$work/bin/payments"
step "building $bin (VERSION=$version) with mk/build-static.sh"
VERSION="$version" mk/build-static.sh "$bin"

# 3. Static, CGO_ENABLED=0, -trimpath, version stamped (-X main.version).
if ldd_out=$(ldd "$bin" 2>&1); then
  fail "ldd lists shared libraries, the binary is dynamic:
$ldd_out"
fi
case "$ldd_out" in
  *"not a dynamic executable"*) ;;
  *) fail "ldd does not say 'not a dynamic executable': $ldd_out" ;;
esac
info=$(go version -m "$bin")
grep -Eq $'^\tbuild\tCGO_ENABLED=0$' <<<"$info" || fail "go version -m does not show CGO_ENABLED=0"
grep -Eq $'^\tbuild\t-trimpath=true$' <<<"$info" || fail "go version -m does not show -trimpath=true"
if grep -Fq "$PWD" "$bin"; then
  fail "the binary contains the build directory $PWD (-trimpath should have removed it)"
fi
# (With -trimpath, go version -m leaves -ldflags out; the binary says its
# version itself.)
got=$("$bin" version)
[ "$got" = "payments $version" ] || fail "payments version says '$got', want 'payments $version'"
step "static: ldd says not a dynamic executable; CGO_ENABLED=0, -trimpath, version $version"

# 4. Run it as the image does. The scratch database is created by serve
#    itself (DATABASE_URL names a database that does not exist yet).
db="image_check_$(date +%s)_$$"
run=$work/run
mkdir -p "$run"
chmod 0755 "$work" "$work/bin" "$run"
log=$work/serve.log
as_image_user=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
  as_image_user=(setpriv --reuid="$image_uid" --regid="$image_uid" --clear-groups)
fi
step "running serve from an empty directory with an empty environment${as_image_user:+ as uid $image_uid} on database $db"
(
  cd "$run"
  exec "${as_image_user[@]}" env -i \
    DATABASE_URL="$server/$db?sslmode=disable" \
    PAYMENTS_DEV_AUTH=true \
    PAYMENTS_ADDR=127.0.0.1:0 \
    PAYMENTS_LOG_FORMAT=json \
    "$bin" serve
) >"$log" 2>&1 &
pid=$!

addr=
for _ in $(seq 1 600); do
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "serve exited before it was ready"; }
  addr=$(sed -n 's/.*"msg":"serving","addr":"\([^"]*\)".*/\1/p' "$log" | head -n1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$log" >&2; fail "serve did not log its address within 60s"; }
grep -Fq "\"version\":\"$version\"" "$log" || { cat "$log" >&2; fail "serve did not log version $version"; }

ready=
for _ in $(seq 1 300); do
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "serve exited before /readyz answered"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$addr/readyz" || true)
  if [ "$code" = 200 ]; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || { cat "$log" >&2; fail "GET /readyz did not answer 200 within 30s (last: $code)"; }
step "GET http://$addr/readyz: 200"

kill -TERM "$pid"
stopped=
for _ in $(seq 1 300); do
  if ! kill -0 "$pid" 2>/dev/null; then stopped=1; break; fi
  sleep 0.1
done
[ -n "$stopped" ] || { cat "$log" >&2; fail "serve still running 30s after SIGTERM"; }
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || { cat "$log" >&2; fail "serve exited with $rc after SIGTERM, want 0"; }
grep -Fq '"msg":"stopped"' "$log" || { cat "$log" >&2; fail "serve did not log that it stopped"; }
step "SIGTERM: exit 0"
step "ok"

#!/usr/bin/env bash
# Replays the Dockerfile's runtime stage without a container engine (none exists on CI's machine):
# the same files (package.json, production node_modules, dist), code owned by root and read-only to an
# unprivileged user, a data dir owned by that user, the image's environment and nothing else, the
# HEALTHCHECK command, /readyz, the production config guard, and a clean SIGTERM exit.
# Needs root (to create the user and switch to it). Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

SMOKE_USER=gwsmoke
NODE_BIN="$(command -v node)"
# What the image's ENV and the compose file would give; nothing else leaks in from the caller's environment.
BASE_PATH="$(dirname "$NODE_BIN"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

log() { printf '[runtime-smoke] %s\n' "$*" >&2; }
die() {
  log "FAIL: $*"
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (creates user $SMOKE_USER and drops privileges to it)"
command -v setpriv >/dev/null || die "setpriv (util-linux) is required"

tmp="$(mktemp -d -t gw-runtime-smoke.XXXXXX)"
sim_pid=""
gw_pid=""
cleanup() {
  local rc=$?
  for pid in "$gw_pid" "$sim_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ "$rc" -ne 0 ]; then
    for f in simulator.log gateway.out gateway.err noupstream.err; do
      if [ -s "$tmp/$f" ]; then
        log "--- tail of $f ---"
        tail -n 40 "$tmp/$f" >&2 || true
      fi
    done
  fi
  cd /
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command as the unprivileged user in the runtime's clean environment (variables go first, as for
# env). Called from the app dir. No subshell or function wraps a backgrounded start: setpriv and env both
# exec, so "$!" is node's own pid and SIGTERM reaches node itself, as it does PID 1 in the container.
as_user=(setpriv --reuid="$SMOKE_USER" --regid="$SMOKE_USER" --clear-groups --
  env -i PATH="$BASE_PATH" HOME=/nonexistent LANG=C.UTF-8)

free_port() {
  "$NODE_BIN" -e '
    const s = require("net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Prints the HTTP status of a GET (000 when there is no answer); bounded by a 3 s timeout.
http_status() {
  "$NODE_BIN" -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(3000) })
      .then(async (r) => { await r.arrayBuffer(); console.log(r.status); })
      .catch(() => console.log("000"));' "$1"
}

# wait_until SECONDS DESCRIPTION CMD...: polls CMD every 0.2 s until it succeeds or the time is up.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out after ${limit}s waiting for $what"
    sleep 0.2
  done
}

# wait_exit PID SECONDS: waits for a child to exit, at most SECONDS; sets exit_code. Not for use in $(...):
# only this shell can collect its children's exit codes.
exit_code=""
wait_exit() {
  local pid=$1 limit=$2
  local deadline=$((SECONDS + limit))
  while kill -0 "$pid" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
  exit_code=0
  wait "$pid" || exit_code=$?
}

log "building dist/"
npm run build --silent

# --- the runtime stage's file system ---------------------------------------------------------------------
app="$tmp/app"
mkdir -p "$app"
cp -a package.json package-lock.json dist node_modules "$app/"
native="node_modules/better-sqlite3/build/Release/better_sqlite3.node"
[ -f "$app/$native" ] || die "$native is missing: npm ci did not build better-sqlite3"
before="$(stat -c '%Y %s' "$app/$native") $(sha256sum <"$app/$native")"
touch "$tmp/prune.marker"

log "npm prune --omit=dev (must reuse the compiled better-sqlite3, not rebuild it)"
# Offline, with the compilers pointed at /bin/false: a rebuild attempt fails loudly here, and the checksum
# below catches a silent one.
(cd "$app" && env CC=/bin/false CXX=/bin/false \
  npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >"$tmp/prune.log" 2>&1) ||
  { cat "$tmp/prune.log" >&2; die "npm prune --omit=dev failed"; }
[ -f "$app/$native" ] || die "npm prune removed $native"
after="$(stat -c '%Y %s' "$app/$native") $(sha256sum <"$app/$native")"
[ "$before" = "$after" ] || die "npm prune rebuilt better-sqlite3 ($before -> $after)"
rebuilt="$(find "$app/node_modules/better-sqlite3" -newer "$tmp/prune.marker" -type f -print -quit)"
[ -z "$rebuilt" ] || die "npm prune wrote into better-sqlite3 ($rebuilt)"
for dev in typescript vitest tsx @types/node; do
  [ ! -e "$app/node_modules/$dev" ] || die "dev dependency $dev survived npm prune --omit=dev"
done
# The image copies exactly these three; the lock file was only needed for the prune.
rm -f "$app/package-lock.json"
[ "$(cd "$app" && ls -A | sort | tr '\n' ' ')" = "dist node_modules package.json " ] ||
  die "runtime file set differs from the Dockerfile's: $(ls -A "$app")"

if ! id -u "$SMOKE_USER" >/dev/null 2>&1; then
  log "creating system user $SMOKE_USER"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SMOKE_USER"
fi
# As in the image: code owned by root and only readable by the service user; /data owned by the service user.
chown -R root:root "$app"
chmod -R u+rwX,go+rX,go-w "$app"
chmod 755 "$tmp"
data="$tmp/data"
mkdir -p "$data"
chown "$SMOKE_USER:$SMOKE_USER" "$data"
chmod 750 "$data"
# From here on the app dir is the working directory, as WORKDIR /app is in the image.
cd "$app"

sim_port="$(free_port)"
gw_port="$(free_port)"
[ "$sim_port" != "$gw_port" ] || gw_port="$(free_port)"
sim_key="smoke-upstream-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

# --- the production guard --------------------------------------------------------------------------------
log "NODE_ENV=production without UPSTREAM_BASE_URL must refuse to start"
rc=0
"${as_user[@]}" NODE_ENV=production PORT="$gw_port" DATA_DIR="$data" \
  timeout 20 "$NODE_BIN" dist/main.js >/dev/null 2>"$tmp/noupstream.err" </dev/null || rc=$?
[ "$rc" -ne 0 ] || die "gateway started in production without UPSTREAM_BASE_URL"
[ "$rc" -ne 124 ] || die "gateway hung instead of refusing to start without UPSTREAM_BASE_URL"
grep -qE 'UPSTREAM_BASE_URL.* is required' "$tmp/noupstream.err" ||
  die "no clear message about UPSTREAM_BASE_URL (exit $rc): $(head -c 500 "$tmp/noupstream.err")"
log "refused with exit $rc: $(head -n 1 "$tmp/noupstream.err")"

# --- the simulator, then the gateway, as the unprivileged user ---------------------------------------------
log "starting simulator on 127.0.0.1:$sim_port"
"${as_user[@]}" SIM_API_KEY="$sim_key" SIM_PORT="$sim_port" SIM_HOST=127.0.0.1 \
  "$NODE_BIN" dist/simulator/main.js >/dev/null 2>"$tmp/simulator.log" </dev/null &
sim_pid=$!
sim_up() {
  kill -0 "$sim_pid" 2>/dev/null || die "simulator exited early"
  grep -qsE 'SIMULATED UPSTREAM( \([a-z]+\))? listening on' "$tmp/simulator.log"
}
wait_until 15 "the simulator" sim_up

# HOST is left at its default (all interfaces), as in the image, so that the healthcheck's 127.0.0.1 is
# tested against the bind address the container really uses.
log "starting gateway on port $gw_port (NODE_ENV=production, DATA_DIR in the temp dir)"
"${as_user[@]}" NODE_ENV=production PORT="$gw_port" DATA_DIR="$data" \
  UPSTREAM_BASE_URL="http://127.0.0.1:$sim_port" UPSTREAM_API_KEY="$sim_key" \
  "$NODE_BIN" dist/main.js >"$tmp/gateway.out" 2>"$tmp/gateway.err" </dev/null &
gw_pid=$!

# The image's HEALTHCHECK command, run the way Docker runs it: same user, same environment, from WORKDIR.
healthcheck() { "${as_user[@]}" PORT="$gw_port" NODE_ENV=production DATA_DIR="$data" "$NODE_BIN" dist/healthcheck.js 2>/dev/null; }
gw_healthy() {
  kill -0 "$gw_pid" 2>/dev/null || die "gateway exited during start-up"
  healthcheck
}
wait_until 30 "the gateway's /healthz" gw_healthy

rc=0
"${as_user[@]}" PORT="$gw_port" "$NODE_BIN" dist/healthcheck.js >"$tmp/healthcheck.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || die "HEALTHCHECK command exited $rc: $(cat "$tmp/healthcheck.out")"
log "HEALTHCHECK (node dist/healthcheck.js) exit 0"

# The healthcheck must also fail when nothing answers; otherwise a dead replica would look healthy.
rc=0
"${as_user[@]}" PORT="$sim_port" "$NODE_BIN" dist/healthcheck.js >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || die "HEALTHCHECK against a server without /healthz exited $rc, want 1"

status="$(http_status "http://127.0.0.1:$gw_port/readyz")"
[ "$status" = 200 ] || die "/readyz answered $status, want 200 (store and upstream reachable)"
log "/readyz 200"

# The operator console's files are copied into dist/ by the build, not compiled: the runtime stage must have them.
for path in /admin/ui /admin/ui/console.js /admin/ui/console.css; do
  status="$(http_status "http://127.0.0.1:$gw_port$path")"
  [ "$status" = 200 ] || die "$path answered $status, want 200 (is src/admin/ui copied into dist/?)"
done
log "/admin/ui and its files 200"

# The store was opened by the service user: everything under DATA_DIR must belong to it.
[ -f "$data/gateway.db" ] || die "no gateway.db in DATA_DIR ($(ls -A "$data"))"
foreign="$(find "$data" ! -user "$SMOKE_USER" -print)"
[ -z "$foreign" ] || die "files in DATA_DIR not owned by $SMOKE_USER: $foreign"
log "DATA_DIR files owned by $SMOKE_USER: $(cd "$data" && ls -A | tr '\n' ' ')"
# Code is read-only to the service user, as in the image.
for dir in . dist node_modules; do
  if "${as_user[@]}" sh -c ": > $dir/.smoke-write-test" 2>/dev/null; then
    die "the service user can write to $dir in the app dir"
  fi
done

# --- drain and exit --------------------------------------------------------------------------------------
# term_expect_zero NAME PID SECONDS: SIGTERM, wait, and require exit code 0.
term_expect_zero() {
  kill -TERM "$2"
  wait_exit "$2" "$3" || die "$1 still running $3s after SIGTERM"
  [ "$exit_code" -eq 0 ] || die "$1 exited $exit_code after SIGTERM, want 0"
  log "$1 exited 0 after SIGTERM"
}

log "SIGTERM to the gateway (pid $gw_pid)"
term_expect_zero gateway "$gw_pid" 40
gw_pid=""

# Neither the gateway nor the simulator may print the upstream key.
if grep -qF "$sim_key" "$tmp/gateway.out" "$tmp/gateway.err" "$tmp/simulator.log"; then
  die "the upstream key appears in the logs"
fi

term_expect_zero simulator "$sim_pid" 10
sim_pid=""

echo "container runtime smoke: OK"

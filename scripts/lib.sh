# Shared by scripts/run, scripts/test and .ci/run. Source it; do not run it.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A Python >= 3.12: on PATH, or any pyenv version.
find_python() {
  local candidates=(python3.13 python3.12 python3)
  if command -v pyenv >/dev/null 2>&1 || [ -d "${PYENV_ROOT:-$HOME/.pyenv}/versions" ]; then
    local root="${PYENV_ROOT:-$HOME/.pyenv}"
    for v in $(ls -1 "$root/versions" 2>/dev/null | sort -rV); do
      candidates+=("$root/versions/$v/bin/python3")
    done
  fi
  for c in "${candidates[@]}"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

# .venv with the pinned dependencies; reinstalls only when requirements.lock changed.
ensure_venv() {
  if [ ! -x "$PY" ] || ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
    local base
    base="$(find_python)" || die "chatstatus needs Python 3.12 or newer; none found on PATH or in pyenv. Install one (e.g. 'pyenv install 3.12') and retry."
    say "creating .venv with $base"
    rm -rf "$VENV"
    "$base" -m venv "$VENV"
  fi
  local stamp="$VENV/.requirements.lock.sha"
  local want
  want="$(sha256sum "$ROOT/requirements.lock" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing pinned dependencies (requirements.lock)"
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements.lock"
    echo "$want" > "$stamp"
  fi
}

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { [ "$(printf 'PING\r\n' | timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/6379; cat >&3; head -c 5 <&3' 2>/dev/null)" = "+PONG" ]; }

# Start the local PostgreSQL and Redis when they are installed but not running.
ensure_services() {
  if ! pg_up; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      say "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    fi
  fi
  if ! redis_up; then
    if command -v redis-server >/dev/null 2>&1; then
      say "starting Redis"
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
    fi
  fi
  for _ in $(seq 1 30); do pg_up && redis_up && return 0; sleep 1; done
  pg_up || die "PostgreSQL is not reachable on 127.0.0.1:5432 (install it, or set DATABASE_URL)"
  redis_up || die "Redis is not reachable on 127.0.0.1:6379 (install redis-server)"
}

# Debian's Chromium for the browser tests (never a downloaded browser build).
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium for the browser tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  fi
  command -v chromium >/dev/null 2>&1 || die "the browser tests need Debian's chromium: apt-get install chromium"
}

# Debian's nginx and redis-sentinel for the production recipe test and the
# Sentinel drill (tests/production, tests/drills/test_sentinel.py). The tests
# run them from their own temporary configuration; the system's services are
# neither configured nor started here.
ensure_apt_binary() {
  local binary="$1" package="$2"
  if command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's $package for the production tests"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  fi
  command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ] \
    || die "the production tests need Debian's $package: apt-get install $package"
}

ensure_nginx() { ensure_apt_binary nginx nginx; }
ensure_redis_sentinel() { ensure_apt_binary redis-sentinel redis-sentinel; }

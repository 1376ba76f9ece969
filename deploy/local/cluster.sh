#!/usr/bin/env bash
# A whole "cluster" on one machine: Ray head + worker(s), the PostgreSQL trial
# store, the read-only dashboard. For trying the cluster path before a real one
# (docs/cluster.md); the same moving parts as deploy/k8s and deploy/ray.
#
#   export NAS_STORAGE='postgresql+psycopg://nas@127.0.0.1:5432/nas'   # password: ~/.pgpass or in the URL
#   deploy/local/cluster.sh up        # start everything (idempotent)
#   eval "$(deploy/local/cluster.sh env)"
#   ray job submit --working-dir . -- nas search examples/quickstart_nb201.yaml --quiet
#   deploy/local/cluster.sh status
#   deploy/local/cluster.sh down      # stop what `up` started, and nothing else
#
# Settings (environment; defaults in brackets):
#   NAS_STORAGE            PostgreSQL URL of the store, as its owner (required for `up`)
#   NAS_DASHBOARD_STORAGE  URL the dashboard reads with [a read-only role `up` creates]
#   NAS_DASHBOARD_ROLE     name of that role [nas_dashboard]
#   NAS_CLUSTER_DASHBOARD  1: start the dashboard; 0: Ray and the store only (no role, no dashboard) [1]
#   NAS_CLUSTER_DIR        state: token, pids, logs [~/.local/state/nas-cluster]
#   NAS_RAY_TMP            Ray's temp dir, at most 40 characters [$NAS_CLUSTER_DIR/ray]
#   NAS_ARTIFACTS          where the driver writes trial weights [$NAS_CLUSTER_DIR/artifacts]
#   NAS_CLUSTER_WORKERS    worker nodes [1]        RAY_HEAD_CPUS / RAY_WORKER_CPUS  CPUs per node [1 / 1]
#   RAY_HEAD_PORT [6390]   RAY_DASHBOARD_PORT [8290]   RAY_CLIENT_PORT [10001]   RAY_AGENT_PORT [52365]
#   NAS_DASHBOARD_PORT [8501]
#
# Security: Ray runs with token authentication (a token generated into
# $NAS_CLUSTER_DIR/auth_token, mode 0600); the Ray dashboard/job API and the NAS
# dashboard listen on 127.0.0.1 only. Ray's own GCS and raylet ports listen on
# all interfaces (Ray has no setting to change that); the token guards them.
# Database passwords are passed through the environment or 0600 files, never on
# a command line or in a log. Workers get no database credentials at all: only
# the driver (which runs on the head) writes the store.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

dir="${NAS_CLUSTER_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/nas-cluster}"
workers="${NAS_CLUSTER_WORKERS:-1}"
head_cpus="${RAY_HEAD_CPUS:-1}"
worker_cpus="${RAY_WORKER_CPUS:-1}"
head_port="${RAY_HEAD_PORT:-6390}"
ray_dashboard_port="${RAY_DASHBOARD_PORT:-8290}"
client_port="${RAY_CLIENT_PORT:-10001}"
agent_port="${RAY_AGENT_PORT:-52365}"
dashboard_port="${NAS_DASHBOARD_PORT:-8501}"
dashboard_role="${NAS_DASHBOARD_ROLE:-nas_dashboard}"
with_dashboard="${NAS_CLUSTER_DASHBOARD:-1}"
python="${PYTHON:-python3}"

say() { printf '%s\n' "$*" >&2; }
die() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }

need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is not on PATH; $2"
}

ray_env() {
    export RAY_AUTH_MODE=token
    export RAY_AUTH_TOKEN_PATH="$dir/auth_token"
    export RAY_USAGE_STATS_ENABLED=0
}

# The processes of one component share a session whose id is the pid we
# recorded when we started it (setsid); stopping kills exactly those.
session_pids() {
    local sid="$1"
    ps -eo pid=,sid= | awk -v sid="$sid" '$2 == sid { print $1 }'
}

alive() {
    local file="$dir/$1.pid"
    [[ -f "$file" ]] && [[ -n "$(session_pids "$(cat "$file")")" ]]
}

stop_component() {
    local name="$1" file="$dir/$1.pid" sid pids
    [[ -f "$file" ]] || return 0
    sid="$(cat "$file")"
    pids="$(session_pids "$sid")"
    if [[ -n "$pids" ]]; then
        say "stopping $name"
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for _ in $(seq 1 30); do
            [[ -z "$(session_pids "$sid")" ]] && break
            sleep 0.5
        done
        pids="$(session_pids "$sid")"
        # shellcheck disable=SC2086
        [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
    fi
    rm -f "$file"
}

wait_for_nodes() {
    local expected="$1" active=0
    for _ in $(seq 1 120); do
        active="$(ray status --address "127.0.0.1:$head_port" 2>/dev/null | awk '
            /^Active:/ { on = 1; next } /^(Pending|Recent failures):/ { on = 0 }
            on && /node_/ { n += 1 } END { print n + 0 }')"
        [[ "$active" -ge "$expected" ]] && return 0
        sleep 1
    done
    die "only $active of $expected Ray nodes came up; see $dir/logs"
}

wait_for_http() {
    local url="$1" what="$2"
    for _ in $(seq 1 120); do
        if "$python" - "$url" <<'EOF' 2>/dev/null; then
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
    sys.exit(0 if response.status == 200 else 1)
EOF
            return 0
        fi
        sleep 1
    done
    die "$what did not answer at $url; see $dir/logs"
}

readonly_storage() {
    # The dashboard's URL: given, or a read-only role created (or updated) with deploy/postgres/readonly-role.sql.
    if [[ -n "${NAS_DASHBOARD_STORAGE:-}" ]]; then
        (umask 077 && printf '%s\n' "$NAS_DASHBOARD_STORAGE" >"$dir/dashboard_storage_url")
        return 0
    fi
    need psql "install the PostgreSQL client (psql 15+) or set NAS_DASHBOARD_STORAGE"
    if [[ ! -s "$dir/dashboard_db_password" ]]; then
        (umask 077 && "$python" -c 'import secrets; print(secrets.token_hex(24))' >"$dir/dashboard_db_password")
    fi
    (
        eval "$pg_env"
        NAS_DASHBOARD_DB_PASSWORD="$(cat "$dir/dashboard_db_password")"
        export NAS_DASHBOARD_DB_PASSWORD
        psql -X -q -v ro_user="$dashboard_role" -v schema="$NAS_STORE_SCHEMA" \
            -f "$repo/deploy/postgres/readonly-role.sql" >>"$dir/logs/db.log" 2>&1
    ) || die "creating the read-only role failed; see $dir/logs/db.log"
    "$python" "$here/dburls.py" readonly-url --user "$dashboard_role" \
        --password-file "$dir/dashboard_db_password" --out "$dir/dashboard_storage_url"
}

up() {
    [[ -n "${NAS_STORAGE:-}" ]] || die "set NAS_STORAGE to the store's PostgreSQL URL (see docs/cluster.md)"
    [[ "$with_dashboard" == 0 || "$with_dashboard" == 1 ]] ||
        die "NAS_CLUSTER_DASHBOARD=$with_dashboard is not allowed; expected 0 (no dashboard) or 1"
    need ray "install the platform with its ray extra (pip install 'nas-platform[all]')"
    need nas "install the platform (pip install 'nas-platform[all]')"
    # libpq settings for psql (kept in memory, never printed); fails unless NAS_STORAGE is PostgreSQL.
    pg_env="$("$python" "$here/dburls.py" pgenv)" || die "NAS_STORAGE must be a PostgreSQL URL"
    local ray_tmp="${NAS_RAY_TMP:-$dir/ray}"
    # Ray puts Unix sockets under its temp dir; their paths may not exceed 107 bytes.
    # Each node has a temp dir of its own: nodes sharing one would share (and garbage-collect)
    # each other's runtime environments, such as the working directory of a running job.
    [[ ${#ray_tmp} -le 40 ]] ||
        die "Ray's temp dir $ray_tmp is too long for its socket paths (at most 40 characters); set NAS_RAY_TMP"
    mkdir -p "$dir/logs"
    chmod 700 "$dir"
    if alive head; then
        say "the cluster is already running ($dir); \`$0 down\` stops it"
        return 0
    fi

    # From here on a failure stops whatever this run has started.
    trap 'say "up failed; stopping what it started"; down' EXIT
    if [[ ! -s "$dir/auth_token" ]]; then
        (umask 077 && "$python" -c 'import secrets; print(secrets.token_hex(32))' >"$dir/auth_token")
    fi
    ray_env
    export NAS_ARTIFACTS="${NAS_ARTIFACTS:-$dir/artifacts}"
    mkdir -p "$NAS_ARTIFACTS"

    say "migrating the store"
    nas db upgrade >>"$dir/logs/db.log" 2>&1 || die "nas db upgrade failed; see $dir/logs/db.log"
    if [[ "$with_dashboard" == 1 ]]; then
        readonly_storage
        # The dashboard starts while Ray does; it reads only the database.
        say "starting the dashboard on 127.0.0.1:$dashboard_port"
        NAS_STORAGE="$(cat "$dir/dashboard_storage_url")" setsid nas dashboard \
            --port "$dashboard_port" --host 127.0.0.1 >>"$dir/logs/dashboard.log" 2>&1 </dev/null &
        echo $! >"$dir/dashboard.pid"
    fi

    say "starting the Ray head on 127.0.0.1:$head_port"
    # The head keeps NAS_STORAGE and NAS_ARTIFACTS in its environment: the drivers
    # that `ray job submit` starts on it inherit them, so no job carries credentials.
    setsid ray start --head --node-ip-address 127.0.0.1 --port "$head_port" --num-cpus "$head_cpus" \
        --dashboard-host 127.0.0.1 --dashboard-port "$ray_dashboard_port" \
        --ray-client-server-port "$client_port" --dashboard-agent-listen-port "$agent_port" \
        --temp-dir "$ray_tmp" --disable-usage-stats \
        >>"$dir/logs/head.log" 2>&1 </dev/null &
    echo $! >"$dir/head.pid"
    wait $! || die "the Ray head did not start; see $dir/logs/head.log"

    local i
    for i in $(seq 1 "$workers"); do
        say "starting Ray worker $i"
        setsid env -u NAS_STORAGE -u NAS_DASHBOARD_STORAGE -u PGPASSWORD \
            ray start --address "127.0.0.1:$head_port" --node-ip-address 127.0.0.1 \
            --num-cpus "$worker_cpus" --dashboard-agent-listen-port "$((agent_port + i))" \
            --temp-dir "$ray_tmp-w$i" --disable-usage-stats >>"$dir/logs/worker-$i.log" 2>&1 </dev/null &
        echo $! >"$dir/worker-$i.pid"
        wait $! || die "Ray worker $i did not start; see $dir/logs/worker-$i.log"
    done
    wait_for_nodes "$((workers + 1))"

    if [[ "$with_dashboard" == 1 ]]; then
        wait_for_http "http://127.0.0.1:$dashboard_port/_stcore/health" "the dashboard"
    fi
    trap - EXIT

    say "up: Ray jobs at http://127.0.0.1:$ray_dashboard_port, dashboard at http://127.0.0.1:$dashboard_port"
    say "next: eval \"\$($0 env)\" && ray job submit --working-dir . -- nas search CONFIG --quiet"
}

down() {
    [[ -d "$dir" ]] || return 0
    local file
    stop_component dashboard
    for file in "$dir"/worker-*.pid; do
        [[ -e "$file" ]] && stop_component "$(basename "$file" .pid)"
    done
    stop_component head
    say "down ($dir keeps the logs, the token and the artifacts)"
}

status() {
    local name file state=0
    for file in "$dir"/head.pid "$dir"/worker-*.pid "$dir"/dashboard.pid; do
        [[ -e "$file" ]] || continue
        name="$(basename "$file" .pid)"
        if alive "$name"; then echo "$name: running"; else echo "$name: stopped"; state=1; fi
    done
    [[ -e "$dir/head.pid" ]] || { echo "not started"; return 1; }
    ray_env
    ray status --address "127.0.0.1:$head_port" 2>/dev/null | sed -n '/^Active:/,/^Pending:/p' || state=1
    return "$state"
}

print_env() {
    # What a shell needs to submit jobs to this cluster (no secret: the token stays in its file).
    printf 'export RAY_ADDRESS=%q\n' "http://127.0.0.1:$ray_dashboard_port"
    printf 'export RAY_AUTH_MODE=token\n'
    printf 'export RAY_AUTH_TOKEN_PATH=%q\n' "$dir/auth_token"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    env) print_env ;;
    *) die "usage: $0 up|down|status|env" ;;
esac

#!/usr/bin/env bash
# Creates the two Secrets the manifests read, with fresh random credentials:
#   nas-db         postgres-password      password of the store's owner role `nas` (the PostgreSQL server's)
#                  storage-url            NAS_STORAGE of the search driver and `nas db upgrade` (owner role)
#                  dashboard-password     password of the read-only role `nas_dashboard`
#                  dashboard-storage-url  NAS_STORAGE of the dashboard (read-only role)
#   nas-ray-token  auth_token             Ray's token (RAY_AUTH_TOKEN of every node, the autoscaler, the submitter)
# Nothing is written to disk or put on a command line: values travel from this
# process to kubectl through a pipe. Existing Secrets are left alone (the
# database keeps the password it was created with); delete one to regenerate it.
#
#   deploy/k8s/create-secrets.sh                  # namespace nas, in-cluster PostgreSQL
#   NAS_DB_HOST=db.example.org deploy/k8s/create-secrets.sh   # a managed server (create the roles there)
set -euo pipefail

namespace="${NAS_NAMESPACE:-nas}"
db_host="${NAS_DB_HOST:-nas-postgres}"
db_port="${NAS_DB_PORT:-5432}"
db_name="${NAS_DB_NAME:-nas}"

random_hex() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }

exists() { kubectl -n "$namespace" get secret "$1" >/dev/null 2>&1; }

apply_secret() {  # name; KEY=VALUE lines on stdin
    kubectl -n "$namespace" create secret generic "$1" --from-env-file=/dev/stdin \
        --dry-run=client -o yaml | kubectl -n "$namespace" apply -f - >/dev/null
    echo "created secret $namespace/$1" >&2
}

kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace" >/dev/null

if exists nas-db; then
    echo "secret $namespace/nas-db exists; left unchanged" >&2
else
    owner="$(random_hex)"
    reader="$(random_hex)"
    # Hex passwords need no escaping inside a URL.
    apply_secret nas-db <<VALUES
postgres-password=$owner
storage-url=postgresql+psycopg://nas:$owner@$db_host:$db_port/$db_name
dashboard-password=$reader
dashboard-storage-url=postgresql+psycopg://nas_dashboard:$reader@$db_host:$db_port/$db_name
VALUES
fi

if exists nas-ray-token; then
    echo "secret $namespace/nas-ray-token exists; left unchanged" >&2
else
    apply_secret nas-ray-token <<VALUES
auth_token=$(random_hex)$(random_hex)
VALUES
fi

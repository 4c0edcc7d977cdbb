#!/usr/bin/env bash
# Install what Steward needs, skipping what is already there (make calls this; see README).
#   scripts/install.sh system   PostgreSQL server and a JDK/Maven from Debian if missing
#   scripts/install.sh python   .venv with the pinned Python packages (requirements.lock)
#   scripts/install.sh jars     the JVM jars pinned in pom.xml, copied into .jars/ (and .jars/kafka/)
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
PYTHON=${PYTHON:-python3.11}

have_pg_server() {
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

system() {
  local missing=()
  have_pg_server || missing+=(postgresql)
  command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null 2>&1 || missing+=(maven)
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: missing Debian packages: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "install.sh: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  # Debian starts a cluster of its own on install; Steward runs throwaway servers instead.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for cluster in /etc/postgresql/*/main; do
      [ -d "$cluster" ] || continue
      version=$(basename "$(dirname "$cluster")")
      pg_ctlcluster "$version" main stop >/dev/null 2>&1 || true
    done
  fi
}

python_env() {
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  if [ ! -x .venv/bin/uv ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
  fi
  # The lock pins every transitive version; pyproject.toml pins the direct ones.
  .venv/bin/uv pip install --quiet --system-certs --python .venv/bin/python \
    -c requirements.lock -e '.[dev]'
  .venv/bin/uv pip check --python .venv/bin/python
}

jars() {
  # Spark's and Flink's jars into .jars/; the Kafka broker (tests, `steward dev kafka`) with
  # its own dependencies into .jars/kafka/, so neither classpath sees the other's.
  mvn -q -B dependency:copy-dependencies -DoutputDirectory=.jars
  mvn -q -B -P kafka-broker dependency:copy-dependencies
}

for step in "$@"; do
  case "$step" in
    system) system ;;
    python) python_env ;;
    jars) jars ;;
    *) echo "install.sh: unknown step $step" >&2; exit 2 ;;
  esac
done

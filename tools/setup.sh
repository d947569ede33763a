#!/usr/bin/env bash
# Installs what building and testing l4re_ma needs on Debian 12, from
# Debian's packages only (no other network access is needed). Idempotent.
set -euo pipefail

packages=(
  bazel-bootstrap bazel-rules-java bazel-platforms   # Bazel 4.2.3 and its local rules
  build-essential pkg-config
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
echo "setup: all packages present" >&2

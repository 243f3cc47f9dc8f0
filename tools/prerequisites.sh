#!/usr/bin/env bash
# What `make test` needs beyond the Rust toolchain, Python 3 and Node.js, from Debian's
# packages, by name: `chromium` (the admin page's browser test) and `postgresql` (the
# integration suite's second pass and the several-nodes tests). Installed with apt-get when
# missing and run as root (as CI runs); otherwise this stops at once and names the one command
# that installs them. (The Python and Node clients come from PyPI and npm: `make clients`.)
#
#   tools/prerequisites.sh chromium postgresql
set -euo pipefail

missing=()
for package in "$@"; do
  case "$package" in
    postgresql) ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql) ;;
    chromium) command -v chromium >/dev/null 2>&1 || missing+=(chromium) ;;
    *) echo "prerequisites.sh: unknown package $package" >&2; exit 2 ;;
  esac
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "make test needs Debian's ${missing[*]}: run  sudo apt-get install -y ${missing[*]}" >&2
  exit 2
fi
echo "== installing Debian's ${missing[*]} (make test needs them)"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"

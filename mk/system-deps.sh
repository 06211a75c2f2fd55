#!/usr/bin/env bash
# Install the Debian/Ubuntu packages hkdeploy's chain and tests use (called by `make setup`).
#   mk/system-deps.sh demo   what `make demo` needs: a C compiler and the Python headers
#   mk/system-deps.sh test   everything `make test` uses: + Arm toolchain, clang, QEMU, ser2net
# As root with apt-get it installs what is missing (apt-get update first); otherwise it prints the
# one apt line to run and carries on (the tests that need a missing tool skip, naming that line).
set -euo pipefail
DEMO_PKGS=(build-essential python3-dev python3-venv)
TEST_PKGS=("${DEMO_PKGS[@]}" gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
           clang qemu-system-arm ser2net)
case "${1:-test}" in
    demo) pkgs=("${DEMO_PKGS[@]}") ;;
    test) pkgs=("${TEST_PKGS[@]}") ;;
    *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup: not a Debian/Ubuntu system: install the equivalents of: ${pkgs[*]}" >&2
    exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1 || [ -n "${HK_NO_APT:-}" ]; then
    echo "setup: missing system packages; run: sudo apt-get update && sudo $line" >&2
    echo "setup: (tests that need them are skipped until then)" >&2
    exit 0
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

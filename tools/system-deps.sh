#!/usr/bin/env bash
# Installs (as root with apt-get) or names (otherwise) the system packages the tests need:
# Qt's runtime libraries, gnome-keyring + dbus for the real Secret Service test, Xvfb for screenshots.
set -u
PKGS="gnome-keyring dbus xvfb xauth libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3 fonts-dejavu-core desktop-file-utils appstream"
stamp=".venv/.system-deps"
[ -f "$stamp" ] && exit 0
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
else
  # Not Debian/Ubuntu (macOS): Qt ships its own libraries; the keyring is the system's.
  mkdir -p .venv && touch "$stamp"; exit 0
fi
if [ -z "$missing" ]; then mkdir -p .venv && touch "$stamp"; exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || true
  apt-get install -y -q --no-install-recommends $missing >/dev/null || { echo "apt-get install failed for:$missing" >&2; exit 1; }
  mkdir -p .venv && touch "$stamp"
else
  echo "tabmail tests want these system packages, missing here:$missing" >&2
  echo "install them with: sudo apt-get install$missing" >&2
  echo "(the tests that need them are skipped with a reason meanwhile)" >&2
fi
exit 0

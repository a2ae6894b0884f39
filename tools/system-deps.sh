#!/usr/bin/env bash
# Installs (as root with apt-get) or names (otherwise) the system packages the tests need:
# Qt's runtime libraries, gnome-keyring + dbus for the real Secret Service test, Xvfb for screenshots.
set -u
# `system-deps.sh run`: what a real window needs on X11/XWayland (Qt's xcb platform plugin).
if [ "${1:-}" = "run" ]; then
  [ "$(uname -s)" = "Linux" ] || exit 0
  PKGS="libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-randr0 libxcb-xfixes0 libxcb-sync1 libxcb-xkb1 libegl1 libgl1 libfontconfig1 libdbus-1-3"
  stamp=".venv/.system-deps-run"
else
  PKGS="gnome-keyring dbus xvfb xauth libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3 fonts-dejavu-core desktop-file-utils appstream"
  stamp=".venv/.system-deps"
fi
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
  echo "tabmail wants these system packages, missing here:$missing" >&2
  echo "install them with: sudo apt-get install$missing" >&2
  [ "${1:-}" = "run" ] || echo "(the tests that need them are skipped with a reason meanwhile)" >&2
fi
exit 0

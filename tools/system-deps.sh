#!/usr/bin/env bash
# Installs (as root with apt-get) or names (otherwise) the Debian packages the tests need, so CI can
# start from a bare Debian machine:
#   Qt's runtime libraries; gnome-keyring + dbus for the real Secret Service tests;
#   xvfb, xauth, xdotool, x11-apps (xwd), imagemagick for walking and capturing real windows;
#   poppler-utils (pdftotext) to read back the PDFs the window exports;
#   postfix, dovecot-core, dovecot-imapd, postgresql, openssl for real mail and database servers
#   (the tests start their own throwaway instances; the system services are never started here);
#   desktop-file-utils and appstream to validate the packaging metadata.
# Idempotent and quick: a stamp in .venv records the package list last found complete.
set -u
# `system-deps.sh run`: what a real window needs on X11/XWayland (Qt's xcb platform plugin).
if [ "${1:-}" = "run" ]; then
  [ "$(uname -s)" = "Linux" ] || exit 0
  PKGS="libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-randr0 libxcb-xfixes0 libxcb-sync1 libxcb-xkb1 libegl1 libgl1 libfontconfig1 libdbus-1-3"
  stamp=".venv/.system-deps-run"
else
  PKGS="gnome-keyring dbus xvfb xauth xdotool x11-apps imagemagick libegl1 libgl1 libxkbcommon0 libfontconfig1 libglib2.0-0 libdbus-1-3 fonts-dejavu-core poppler-utils desktop-file-utils appstream postfix dovecot-core dovecot-imapd postgresql openssl"
  stamp=".venv/.system-deps"
fi
# The stamp holds the list it was written for: adding a package here re-checks on the next run.
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PKGS" ] && exit 0
done_stamp() { mkdir -p .venv && printf '%s' "$PKGS" > "$stamp"; }
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
else
  # Not Debian/Ubuntu (macOS): Qt ships its own libraries; the keyring is the system's.
  done_stamp; exit 0
fi
if [ -z "$missing" ]; then done_stamp; exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  # postfix asks how to configure itself: no configuration (tests write their own main.cf).
  if command -v debconf-set-selections >/dev/null 2>&1; then
    printf '%s\n' "postfix postfix/main_mailer_type select No configuration" \
      "postfix postfix/mailname string localhost" | debconf-set-selections
  fi
  # Installing server packages must not start their system services (postfix, dovecot,
  # postgresql): policy-rc.d answering 101 tells invoke-rc.d not to. Removed again if added here.
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q >/dev/null || echo "apt-get update failed; trying the install with the lists there are" >&2
  if ! apt-get install -y -q --no-install-recommends $missing >/dev/null; then
    echo "apt-get install failed for:$missing" >&2
    exit 1
  fi
  [ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d
  done_stamp
else
  echo "tabmail wants these system packages, missing here:$missing" >&2
  echo "install them with: sudo apt-get install$missing" >&2
  [ "${1:-}" = "run" ] || echo "(the tests that need them are skipped with a reason meanwhile; on CI that fails)" >&2
fi
exit 0

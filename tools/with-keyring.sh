#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with an unlocked gnome-keyring, so the tests
# marked keyring_real can use the real Secret Service. Without them, runs the command as is.
set -u
if [ -z "${TABMAIL_IN_KEYRING_SESSION:-}" ] && command -v dbus-run-session >/dev/null 2>&1 \
   && command -v gnome-keyring-daemon >/dev/null 2>&1; then
  export TABMAIL_IN_KEYRING_SESSION=1
  exec dbus-run-session -- bash "$0" "$@"
fi
if [ -n "${TABMAIL_IN_KEYRING_SESSION:-}" ]; then
  # A throwaway login keyring unlocked with an empty password, in a private home for the run.
  export XDG_DATA_HOME="$(mktemp -d)"
  echo -n "" | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1 || true
  export TABMAIL_REAL_KEYRING=1
fi
exec "$@"

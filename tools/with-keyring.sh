#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with an unlocked, throwaway gnome-keyring, so the
# tests marked keyring_real can use the real Secret Service. Without dbus-run-session or
# gnome-keyring-daemon, runs the command as is (those tests then skip with a reason).
#
# Inside the session it exports TABMAIL_IN_KEYRING_SESSION=1 (this keyring is disposable: tests may
# write the app's own service names into it) and, once the Secret Service answers on the bus,
# TABMAIL_REAL_KEYRING=1.
set -u
if [ -z "${TABMAIL_IN_KEYRING_SESSION:-}" ] && command -v dbus-run-session >/dev/null 2>&1 \
   && command -v gnome-keyring-daemon >/dev/null 2>&1; then
  export TABMAIL_IN_KEYRING_SESSION=1
  exec dbus-run-session -- bash "$0" "$@"
fi
if [ -z "${TABMAIL_IN_KEYRING_SESSION:-}" ]; then
  exec "$@"
fi

# A private home for the keyring files, removed when the command ends.
home="$(mktemp -d "${TMPDIR:-/tmp}/tabmail-keyring.XXXXXX")"
trap 'rm -rf "$home"' EXIT
export XDG_DATA_HOME="$home/data"
mkdir -p "$XDG_DATA_HOME"

# gnome-keyring treats an empty password as "none given" and asks its GUI prompter instead (which
# cannot run headless: "Prompt dismissed"), so the throwaway login keyring gets a throwaway password.
# --unlock reads it from stdin, creates the login keyring with it and makes it the default collection.
printf '%s' "tabmail-throwaway-keyring" \
  | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>"$home/daemon.log"

# Wait (with a deadline) until the Secret Service owns its name on this bus.
ready=""
for _ in $(seq 1 100); do
  if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
       org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
     | grep -q "boolean true"; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ -n "$ready" ]; then
  export TABMAIL_REAL_KEYRING=1
else
  echo "with-keyring.sh: gnome-keyring did not start; keyring_real tests will skip" >&2
  cat "$home/daemon.log" >&2
fi

"$@"

#!/usr/bin/env bash
# Install the one-folder Linux build (dist/tabmail) for the current user, or system-wide:
#
#   packaging/linux/install.sh [DIST_DIR] [PREFIX]      # defaults: dist/tabmail  ~/.local
#   sudo packaging/linux/install.sh dist/tabmail /usr/local
#   packaging/linux/install.sh --uninstall [PREFIX]
#
# Puts the bundle in PREFIX/lib/tabmail, a link in PREFIX/bin, and the desktop file, AppStream
# metainfo and icons (from the bundle's share/ folder) under PREFIX/share. The database and logs
# are never touched.
set -euo pipefail
APP_ID=org.tabmail.Tabmail

if [ "${1:-}" = "--uninstall" ]; then
  prefix="${2:-$HOME/.local}"
  rm -rf "$prefix/lib/tabmail"
  rm -f "$prefix/bin/tabmail" "$prefix/share/applications/$APP_ID.desktop" \
        "$prefix/share/metainfo/$APP_ID.metainfo.xml"
  find "$prefix/share/icons/hicolor" -name "$APP_ID.*" -delete 2>/dev/null || true
  echo "removed tabmail from $prefix"
  exit 0
fi

dist="$(cd "${1:-dist/tabmail}" && pwd)"
prefix="${2:-$HOME/.local}"
[ -x "$dist/tabmail" ] || { echo "no executable at $dist/tabmail: run 'make package' first" >&2; exit 1; }

mkdir -p "$prefix/lib" "$prefix/bin"
rm -rf "$prefix/lib/tabmail"
cp -a "$dist" "$prefix/lib/tabmail"
ln -sfn "$prefix/lib/tabmail/tabmail" "$prefix/bin/tabmail"
# share/ as the spec laid it out; Exec gets the absolute path so a PATH without PREFIX/bin works.
cp -a "$dist/share/." "$prefix/share/"
sed -i "s|^Exec=tabmail|Exec=$prefix/bin/tabmail|; s|^TryExec=tabmail|TryExec=$prefix/bin/tabmail|" \
  "$prefix/share/applications/$APP_ID.desktop"
rm -rf "$prefix/lib/tabmail/share"

command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" || true
echo "installed tabmail into $prefix (run: $prefix/bin/tabmail)"

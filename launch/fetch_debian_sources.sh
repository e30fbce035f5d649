#!/usr/bin/env bash
# Gathers real source code from Debian for a multilingual code corpus: Python, PHP, C#, Go, C++
# (plus C, Rust, TypeScript, Java). Two sources are used:
#   * `apt-get source` of a few moderately sized packages per language, unpacked under
#     DEST_DIR/src/<lang>/<package>-<version>/ (the .dsc/.tar files are deleted afterwards);
#   * library packages that ship their source, installed with apt (php-symfony -> /usr/share/php,
#     golang-src -> /usr/lib/go-*/src, libboost-dev -> /usr/include/boost, librust-*-dev ->
#     /usr/share/cargo/registry) plus the Python standard library already on the machine.
# At the end it writes DEST_DIR/paths.txt, one "<language> <absolute dir>" line per directory.
# Idempotent and resumable: each unpacked package leaves DEST_DIR/src/<lang>/.stamps/<pkg>.done,
# installed packages are only installed when missing, and apt-get update only runs when a deb-src
# entry had to be added or no source index is present. Needs root (or sudo) for the apt steps.
# Usage: bash launch/fetch_debian_sources.sh [DEST_DIR]
#   DEST_DIR defaults to ${BABEL_JAX_SOURCES:-$HOME/.cache/babel_jax/debian}
set -euo pipefail

DEST="${1:-${BABEL_JAX_SOURCES:-$HOME/.cache/babel_jax/debian}}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
export DEBIAN_FRONTEND=noninteractive

# Source packages per language (all in bookworm main; chosen to be mostly that language and a
# few MB each). Kept as "lang:pkg pkg ..." so the order of languages is stable.
SOURCE_PKGS=(
  "python:python-django sympy sqlalchemy twisted mercurial ansible-core python-pip"
  "php:php-laravel-framework composer phpunit roundcube phpmyadmin"
  "csharp:keepass2 newtonsoft-json nunit nrefactory db4o opentk dnlib de4dot mono-addins cecil gdata-sharp mono-tools taoframework gtk-sharp3 hyena taglib-sharp dafny boogie"
  "go:golang-golang-x-tools etcd syncthing caddy rclone"
  "cpp:abseil fmtlib leveldb re2 snappy googletest ninja-build spdlog rocksdb"
  "c:redis curl lua5.4 git"
  "typescript:node-typescript"
  "java:guava-libraries junit4 jackson-databind commons-io jsoup"
)
# Binary packages that install their source as a library.
INSTALL_PKGS=(dpkg-dev php-symfony golang-src libboost-dev
  librust-tokio-dev librust-clap-dev librust-regex-dev librust-serde-json-dev)

log() { echo "[fetch_debian_sources] $*"; }
SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=(sudo -E); else
    log "warning: not root and no sudo; apt steps will fail unless everything is already set up" >&2
  fi
fi
command -v apt-get >/dev/null || { log "error: apt-get not found (needs Debian/Ubuntu)" >&2; exit 1; }

# --- 1. deb-src entries ---------------------------------------------------------------------------
has_deb_src() {
  # An enabled deb-src line (one-line format) or a deb822 stanza whose Types include deb-src.
  grep -qsE '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    || grep -qsiE '^Types:.*\bdeb-src\b' /etc/apt/sources.list.d/*.sources
}
need_update=0
if has_deb_src; then
  log "deb-src entries already configured"
else
  tmp_src="$(mktemp)"
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1 \
      && grep -qsiE '^URIs:.*(debian|ubuntu)' /etc/apt/sources.list.d/*.sources; then
    # Mirror the deb822 stanzas that point at a Debian archive, with Types: deb-src.
    target=/etc/apt/sources.list.d/babel-jax-src.sources
    for f in /etc/apt/sources.list.d/*.sources; do
      [ "$f" = "$target" ] && continue
      # (mawk-compatible: paragraph mode, one stanza per record.)
      awk 'BEGIN { RS = ""; ORS = "" }
           {
             n = split($0, L, "\n"); deb = 0; debian = 0; off = 0; out = ""
             for (i = 1; i <= n; i++) {
               if (L[i] ~ /^#/) continue
               low = tolower(L[i])
               if (low ~ /^types:/ && (" " substr(low, 7) " ") ~ /[ \t]deb[ \t]/) { deb = 1; L[i] = "Types: deb-src" }
               if (low ~ /^uris:.*(debian|ubuntu)/) debian = 1
               if (low ~ /^enabled:[ \t]*no/) off = 1
               out = out L[i] "\n"
             }
             if (deb && debian && !off) print out "\n"
           }' "$f" >> "$tmp_src"
    done
  else
    target=/etc/apt/sources.list.d/babel-jax-src.list
    grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | grep -E 'debian|ubuntu' | sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' | sort -u >> "$tmp_src" || true
  fi
  if [ ! -s "$tmp_src" ]; then
    rm -f "$tmp_src"; log "error: found no Debian 'deb' entries to mirror as deb-src" >&2; exit 1
  fi
  log "adding deb-src entries in $target:"; sed 's/^/    /' "$tmp_src"
  "${SUDO[@]}" install -m 644 "$tmp_src" "$target"; rm -f "$tmp_src"
  need_update=1
fi
if ! ls /var/lib/apt/lists/ 2>/dev/null | grep -q '_source_Sources'; then need_update=1; fi
if [ "$need_update" = 1 ]; then
  log "apt-get update"; "${SUDO[@]}" apt-get update -qq
fi

# --- 2. library packages that ship source ---------------------------------------------------------
missing=()
for p in "${INSTALL_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${#missing[@]} packages: ${missing[*]}"
  if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    log "install failed; retrying after apt-get update"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  log "library packages already installed"
fi

# --- 3. apt-get source ----------------------------------------------------------------------------
# apt-get downloads into the current directory; as root it drops to the _apt user, which must be
# able to write there, so the per-package work dir is made world-writable (else apt prints a
# "Download is performed unsandboxed as root" notice and carries on).
fetch_source() {  # lang pkg
  local lang="$1" pkg="$2" base="$DEST/src/$1"
  local stamp="$base/.stamps/$pkg.done" work="$base/.work-$pkg"
  if [ -e "$stamp" ]; then log "  $lang/$pkg: done already"; return 0; fi
  rm -rf "$work"; mkdir -p "$work" "$base/.stamps"; chmod 777 "$work"
  log "  $lang/$pkg: apt-get source"
  if ! (cd "$work" && apt-get source -qq --only-source "$pkg" >/dev/null 2>"$work/.err"); then
    log "  warning: apt-get source $pkg failed, skipping:" >&2; sed 's/^/      /' "$work/.err" >&2 || true
    rm -rf "$work"; return 0
  fi
  local dir
  dir="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)"
  if [ -z "$dir" ]; then log "  warning: $pkg unpacked nothing, skipping" >&2; rm -rf "$work"; return 0; fi
  rm -rf "${base:?}/$(basename "$dir")"
  mv "$dir" "$base/"
  rm -rf "$work"
  chmod -R u+rwX,go+rX "$base/$(basename "$dir")"
  echo "$(basename "$dir")" > "$stamp"
}
for entry in "${SOURCE_PKGS[@]}"; do
  lang="${entry%%:*}"
  log "sources for $lang"
  for pkg in ${entry#*:}; do fetch_source "$lang" "$pkg"; done
done

# --- 4. paths.txt ---------------------------------------------------------------------------------
paths="$DEST/paths.txt"; tmp_paths="$(mktemp)"
add() {
  if [ -d "$2" ]; then echo "$1 $2" >> "$tmp_paths"; else log "warning: $2 missing, not listed" >&2; fi
}
for entry in "${SOURCE_PKGS[@]}"; do
  lang="${entry%%:*}"
  for stamp in "$DEST/src/$lang"/.stamps/*.done; do
    if [ -e "$stamp" ]; then add "$lang" "$DEST/src/$lang/$(cat "$stamp")"; fi
  done
done
if command -v python3 >/dev/null; then
  add python "$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"
fi
add php /usr/share/php
godir="$(ls -d /usr/lib/go-*/src 2>/dev/null | sort -V | tail -n1)"; add go "${godir:-/usr/lib/go/src}"
add cpp /usr/include/boost
add rust /usr/share/cargo/registry
mv "$tmp_paths" "$paths"; chmod 644 "$paths"
log "wrote $paths ($(wc -l < "$paths") directories):"
awk '{print $1}' "$paths" | sort | uniq -c | awk '{printf "    %-11s %d dirs\n", $2, $1}'

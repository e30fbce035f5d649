#!/usr/bin/env bash
# Gathers real source code from Debian for a multilingual code corpus: Python, PHP, C#, Go, C++,
# plus C, Rust, TypeScript and Java. Two kinds of source are used:
#   * source packages, unpacked under DEST_DIR/src/<lang>/<package>-<upstream version>/ with
#     `apt-get source` (downloaded .dsc/.tar files are deleted afterwards);
#   * binary packages that install their library as source (php-symfony -> /usr/share/php,
#     golang-src -> /usr/share/go-*/src, libboost-dev -> /usr/include/boost, librust-*-dev ->
#     /usr/share/cargo/registry), plus the Debian Python standard library.
# It ends by writing DEST_DIR/paths.txt: one "<language> <absolute dir>" line per directory.
#
# Idempotent and resumable: an unpacked package leaves DEST_DIR/src/<lang>/.stamps/<pkg>.done and
# is skipped next time; apt packages are installed only when missing; apt-get update runs only when
# a deb-src entry had to be added or no source index is present. Needs root (or sudo) for apt.
#
# Mirror quirks handled: when `apt-get source PKG` fails (a file 404s, e.g. the security archive
# lists a version the mirror lacks), it retries PKG/<codename>, then falls back to downloading only
# the upstream tarball(s) (hash-checked, via apt-helper) and unpacking them without Debian patches.
# "PKG@dir,dir,-pattern" entries (for very large packages: mono, mediawiki, node-typescript) take
# that upstream-tarball route directly and extract only the listed top-level dirs, skipping tar
# --exclude patterns given with a leading "-".
#
# Usage: bash launch/fetch_debian_sources.sh [DEST_DIR]
#   DEST_DIR defaults to ${BABEL_JAX_SOURCES:-$HOME/.cache/babel_jax/debian}
set -euo pipefail

DEST="${1:-${BABEL_JAX_SOURCES:-$HOME/.cache/babel_jax/debian}}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC1091
CODENAME="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"

# Source packages per language ("lang:entry entry ..."), all in bookworm main, a few MB each and
# mostly written in that language. Upstream-only excerpts of big packages use PKG@dirs (see above).
SOURCE_PKGS=(
  "python:python-django sympy mercurial python-pip jinja2 pylint"
  "php:php-laravel-framework composer phpunit roundcube php-codesniffer php-twig dokuwiki
       mediawiki@includes,maintenance,tests,extensions,languages"
  "csharp:keepass2 hyena dbus-sharp dbus-sharp-glib notify-sharp-3.0 newtonsoft-json nunit dnlib
          mono@mcs/class,mcs/mcs,mcs/tools,external/rx,external/aspnetwebstack,external/Newtonsoft.Json,-mcs/class/referencesource,-Documentation,-*.dll,-*.exe"
  "go:golang-golang-x-tools etcd syncthing rclone caddy golang-github-gin-gonic-gin"
  "cpp:abseil fmtlib leveldb re2 snappy googletest ninja-build spdlog rocksdb cppcheck"
  "c:redis curl lua5.4 git"
  "typescript:node-typescript@src,tests/cases"
  "java:guava-libraries junit4 jackson-databind commons-io jsoup"
)
# Binary packages that install source code (dpkg-dev: dpkg-source, which apt-get source needs).
INSTALL_PKGS=(dpkg-dev php-symfony golang-src libboost-dev
  librust-tokio-dev librust-clap-dev librust-regex-dev librust-serde-json-dev)

log() { echo "[fetch_debian_sources] $*"; }
warn() { echo "[fetch_debian_sources] warning: $*" >&2; }
SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=(sudo -E); else
    warn "not root and no sudo; apt steps will fail unless everything is already set up"
  fi
fi
command -v apt-get >/dev/null || { log "error: apt-get not found (needs Debian/Ubuntu)" >&2; exit 1; }
start_s=$SECONDS

# --- 1. deb-src entries ---------------------------------------------------------------------------
has_deb_src() {
  # An enabled deb-src line (one-line format) or a deb822 stanza whose Types include deb-src.
  grep -qsE '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    || grep -qsiE '^Types:.*[[:space:]]deb-src([[:space:]]|$)' /etc/apt/sources.list.d/*.sources
}
need_update=0
if has_deb_src; then
  log "deb-src entries already configured"
else
  tmp_src="$(mktemp)"
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1 \
      && grep -qsiE '^URIs:.*(debian|ubuntu)' /etc/apt/sources.list.d/*.sources; then
    # Mirror the deb822 stanzas that point at a Debian/Ubuntu archive, with Types: deb-src.
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
if ! compgen -G '/var/lib/apt/lists/*_source_Sources*' >/dev/null; then need_update=1; fi
if [ "$need_update" = 1 ]; then
  log "apt-get update"; "${SUDO[@]}" apt-get update -qq
fi

# --- 2. packages that install source --------------------------------------------------------------
missing=()
for p in "${INSTALL_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${#missing[@]} packages (with dependencies): ${missing[*]}"
  if ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    log "install failed; retrying after apt-get update"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  log "source-shipping packages already installed"
fi

# --- 3. source packages ---------------------------------------------------------------------------
# apt-get and apt-helper download into the current directory; run as root they drop to the _apt
# user, which must be able to write there, hence the world-writable work dirs.

# Moves the single directory in $1 (or $1 itself when it holds several entries) to $2.
adopt_dir() {
  local src="$1" dst="$2" entries
  entries=("$src"/*)
  if [ "${#entries[@]}" = 1 ] && [ -d "${entries[0]}" ]; then src="${entries[0]}"; fi
  rm -rf "$dst"; mv "$src" "$dst"
}

# Upstream-only route: downloads the upstream tarball(s) listed by `apt-get source --print-uris`
# (hashes checked by apt-helper) and unpacks them into $work/out/<pkg>-<upstream version>.
# Args: spec work [filter...]  (filters: top-level dirs to keep, "-pattern" = tar --exclude).
fetch_upstream() {
  local spec="$1" work="$2"; shift 2
  local pkg="${spec%%/*}" uri file _size hash main="" comps=() keep=() excl=() f
  for f in "$@"; do
    if [ "${f#-}" != "$f" ]; then excl+=("--exclude=${f#-}"); else keep+=("$f"); fi
  done
  rm -rf "$work/dl" "$work/x" "$work/out"; mkdir -p "$work/dl" "$work/x" "$work/out"
  chmod 777 "$work/dl"
  while read -r uri file _size hash; do
    uri="${uri//\'/}"
    case "$file" in
      *.dsc|*.asc|*.debian.tar.*|*.diff.gz) continue ;;
      *.orig-*.tar.*) comps+=("$file") ;;
      *.orig.tar.*|*.tar.*) main="$file" ;;
      *) continue ;;
    esac
    /usr/lib/apt/apt-helper download-file "$uri" "$work/dl/$file" "$hash" >/dev/null 2>"$work/.err" \
      || return 1
  done < <(cd "$work" && apt-get source --only-source --print-uris -qq "$spec" 2>/dev/null | grep "^'")
  [ -n "$main" ] || return 1
  local up="${main#"${pkg}"_}"; up="${up%.orig.tar.*}"; up="${up%.tar.*}"
  local members=()
  if [ "${#keep[@]}" -gt 0 ]; then
    # Member names are prefixed by the tarball's top directory (if it has one).
    local first top=""
    first="$(tar -tf "$work/dl/$main" | sed -n 1p)"
    case "$first" in */*) top="${first%%/*}/" ;; esac
    for f in "${keep[@]}"; do members+=("$top$f"); done
  fi
  tar "${excl[@]}" --no-same-owner -xf "$work/dl/$main" -C "$work/x" "${members[@]}" 2>"$work/.err" || return 1
  local dst="$work/out/$pkg-$up"
  adopt_dir "$work/x" "$dst"
  for f in "${comps[@]}"; do  # pkg_ver.orig-NAME.tar.* unpacks into NAME/, as dpkg-source does
    local name="${f##*.orig-}"; name="${name%%.tar.*}"
    mkdir -p "$work/c"; tar -xf "$work/dl/$f" -C "$work/c" --no-same-owner 2>"$work/.err" || return 1
    adopt_dir "$work/c" "$dst/$name"
  done
  rm -rf "$work/dl" "$work/x" "$work/c"
}

# apt-get source route; leaves the unpacked tree in $work/out/.
fetch_apt_source() {  # spec work
  rm -rf "$2/out"; mkdir -p "$2/out"; chmod 777 "$2/out"
  (cd "$2/out" && apt-get source -qq --only-source "$1" >/dev/null 2>"$2/.err") || return 1
  find "$2/out" -mindepth 1 -maxdepth 1 -type f -delete  # the .dsc and tarballs
}

fetch_source() {  # lang entry
  local lang="$1" entry="$2" base="$DEST/src/$1"
  local pkg="${entry%%@*}" filters=()
  [ "$pkg" != "$entry" ] && IFS=, read -r -a filters <<< "${entry#*@}"
  local stamp="$base/.stamps/$pkg.done" work="$base/.work-$pkg" how=""
  if [ -e "$stamp" ]; then log "  $lang/$pkg: done already ($(cat "$stamp"))"; return 0; fi
  rm -rf "$work"; mkdir -p "$work" "$base/.stamps"
  if [ "${#filters[@]}" -gt 0 ]; then
    log "  $lang/$pkg: upstream tarball, only ${filters[*]}"
    if fetch_upstream "$pkg" "$work" "${filters[@]}"; then how="upstream subset"; fi
  else
    log "  $lang/$pkg: apt-get source"
    if fetch_apt_source "$pkg" "$work"; then how="apt-get source"
    elif [ -n "$CODENAME" ] && fetch_apt_source "$pkg/$CODENAME" "$work"; then
      how="apt-get source $pkg/$CODENAME"
    elif fetch_upstream "$pkg" "$work" \
        || { [ -n "$CODENAME" ] && fetch_upstream "$pkg/$CODENAME" "$work"; }; then
      how="upstream tarball only (Debian files unavailable)"
    fi
  fi
  local dir=""
  [ -n "$how" ] && dir="$(find "$work/out" -mindepth 1 -maxdepth 1 -type d | head -n1)"
  if [ -z "$dir" ]; then
    warn "could not fetch $pkg; skipping it. Last error:"
    sed 's/^/      /' "$work/.err" >&2 2>/dev/null || true
    rm -rf "$work"; return 0
  fi
  [ "$how" = "apt-get source" ] || log "    ($how)"
  local name; name="$(basename "$dir")"
  rm -rf "${base:?}/$name"; mv "$dir" "$base/$name"
  rm -rf "$work"
  chmod -R u+rwX,go+rX "$base/$name"
  echo "$name" > "$stamp"
}

for spec in "${SOURCE_PKGS[@]}"; do
  lang="${spec%%:*}"
  log "sources for $lang"
  for entry in ${spec#*:}; do fetch_source "$lang" "$entry"; done
done

# --- 4. paths.txt ---------------------------------------------------------------------------------
paths="$DEST/paths.txt"; tmp_paths="$(mktemp)"
add() {
  if [ -d "$2" ]; then echo "$1 $2" >> "$tmp_paths"; else warn "$2 missing, not listed"; fi
}
for spec in "${SOURCE_PKGS[@]}"; do
  lang="${spec%%:*}"
  for entry in ${spec#*:}; do  # only packages still listed above
    stamp="$DEST/src/$lang/.stamps/${entry%%@*}.done"
    if [ -e "$stamp" ]; then add "$lang" "$DEST/src/$lang/$(cat "$stamp")"; fi
  done
done
# Debian's own Python (not a venv/pyenv one found first on PATH).
py=/usr/bin/python3; [ -x "$py" ] || py="$(command -v python3 || true)"
if [ -n "$py" ]; then add python "$("$py" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"; fi
add php /usr/share/php
# shellcheck disable=SC2012
godir="$(ls -d /usr/share/go-*/src /usr/lib/go-*/src 2>/dev/null | sort -t- -k2 -V | tail -n1 || true)"
add go "$(readlink -m "${godir:-/usr/share/go/src}")"
add cpp /usr/include/boost
add rust /usr/share/cargo/registry
mv "$tmp_paths" "$paths"; chmod 644 "$paths"
log "wrote $paths ($(wc -l < "$paths") directories) in $((SECONDS - start_s))s:"
awk '{print $1}' "$paths" | sort | uniq -c | awk '{printf "    %-11s %d dirs\n", $2, $1}'

#!/usr/bin/env bash
# The Debian package end to end: tests/packaging/deb_test.sh build/evstream_<version>_<arch>.deb
# (`make deb-test` builds it first). As root, on a machine where evstream is not installed:
#
#   1. contents (dpkg-deb -c): every expected path with its mode, nothing else; control fields,
#      shlibdeps-derived Depends, the conffile list, the maintainer scripts; the packaged unit
#   2. lintian: no errors (warnings are printed)
#   3. dpkg -i: the evstream user and /var/lib/evstream (evstream:evstream, 0750), the unit
#      verifies and can be enabled; the installed /usr/bin/evstream serves as that user and
#      answers GET /api/health with 200 JSON
#   4. a reinstall keeps a local edit of the conffile; dpkg -r keeps the conffile and the data;
#      dpkg -P deletes the conffile and keeps a data directory that holds a database; an
#      install + purge with an empty data directory leaves nothing but the evstream user (no
#      unit links either)
#
# Changes the system (installs a package), hence not part of `make test`. Bounded: each step has
# a timeout and waits poll with a deadline. Whatever happens, the EXIT trap stops the server it
# started, purges the package, and removes the user, group and data directory if it made them.
set -Eeuo pipefail

PKG=evstream
DATA=/var/lib/evstream
CONF=/etc/evstream/serve.toml
UNIT=/lib/systemd/system/evstream.service
STEP_TIMEOUT=120   # seconds for any one dpkg, lintian or apt-get command
SERVE_TIMEOUT=20   # seconds for the server to print its URL, and to exit after SIGTERM

say() { echo "deb_test: $*"; }
fail() { echo "deb_test: FAIL: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 PACKAGE.deb" >&2; exit 2; }
DEB=$(realpath "$1")
[ -f "$DEB" ] || fail "$1 does not exist (make deb builds it)"
[ "$(id -u)" = 0 ] || fail "run as root: the test installs and purges the package"
for tool in dpkg dpkg-deb dpkg-parsechangelog lintian setpriv python3 timeout; do
    command -v "$tool" >/dev/null || fail "$tool is missing (make deb-test installs lintian)"
done
# Never touch an installation or data that is not the test's own.
if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
    fail "$PKG is installed on this machine; the test would purge it: remove it first"
fi
[ ! -e "$DATA" ] && [ ! -L "$DATA" ] || fail "$DATA exists; the test would create and delete it"
[ ! -e /etc/evstream ] || fail "/etc/evstream exists; the test would create and delete it"
had_user=no; getent passwd evstream >/dev/null && had_user=yes
had_group=no; getent group evstream >/dev/null && had_group=yes
WANTS_LINK=/etc/systemd/system/multi-user.target.wants/evstream.service
[ ! -L "$WANTS_LINK" ] || fail "$WANTS_LINK exists; the test would enable the unit and remove it"

WORK=$(mktemp -d /tmp/evstream-deb-test.XXXXXX)
chmod 0755 "$WORK"
SERVER_PID=
ok=no

cleanup() {
    set +e
    trap - ERR
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
    fi
    if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
        timeout "$STEP_TIMEOUT" dpkg --purge "$PKG" >/dev/null 2>&1 ||
            echo "deb_test: cleanup: dpkg --purge $PKG failed" >&2
    fi
    rm -rf "$DATA" /etc/evstream
    rm -f "$WANTS_LINK"
    if [ "$had_user" = no ] && getent passwd evstream >/dev/null; then userdel evstream; fi
    if [ "$had_group" = no ] && getent group evstream >/dev/null; then groupdel evstream; fi
    if [ "$ok" = yes ]; then
        rm -rf "$WORK"
    else
        echo "deb_test: failed; logs and the unpacked package are in $WORK" >&2
    fi
}
trap cleanup EXIT
# A command that fails outside a check (set -e) still says where.
trap 'echo "deb_test: FAIL: line $LINENO: \"$BASH_COMMAND\" exited $?" >&2' ERR

status() { dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null | tr -d ' ' || true; }
expect_status() {  # expect_status ii|rc|un WHAT (un: purged, or unknown to dpkg)
    local got; got=$(status)
    if [ "$1" = un ] && [ -z "$got" ]; then return 0; fi
    [ "$got" = "$1" ] || fail "$2: package status '$got', expected '$1'"
}
owner_mode() { stat -c '%U:%G %a' "$1"; }

# --- 1. contents ----------------------------------------------------------------------------
arch=$(dpkg --print-architecture)
version=$(dpkg-deb -f "$DEB" Version)
[ "$(basename "$DEB")" = "${PKG}_${version}_${arch}.deb" ] ||
    fail "file name $(basename "$DEB"), expected ${PKG}_${version}_${arch}.deb"
cmake_version=$(sed -n 's/^project(evstream VERSION \([0-9.]*\).*/\1/p' \
    "$(dirname "$0")/../../CMakeLists.txt")
[ "$version" = "$cmake_version" ] || fail "package version $version, CMakeLists.txt says $cmake_version"

declare -A EXPECTED=(
    [./usr/bin/evstream]=-rwxr-xr-x
    [./usr/share/man/man1/evstream.1.gz]=-rw-r--r--
    [./usr/share/bash-completion/completions/evstream]=-rw-r--r--
    [./usr/share/zsh/vendor-completions/_evstream]=-rw-r--r--
    [./usr/share/fish/vendor_completions.d/evstream.fish]=-rw-r--r--
    [./lib/systemd/system/evstream.service]=-rw-r--r--
    [./etc/evstream/serve.toml]=-rw-r--r--
    [./usr/share/doc/evstream/copyright]=-rw-r--r--
    [./usr/share/doc/evstream/changelog.gz]=-rw-r--r--
)
dpkg-deb -c "$DEB" > "$WORK/contents"
say "contents of $(basename "$DEB"):"
sed 's/^/    /' "$WORK/contents"
declare -A FOUND=()
while read -r mode owner _size _date _time path _rest; do
    [ "$owner" = root/root ] || fail "$path is owned by $owner, not root/root"
    case "$mode" in
    d*) [ "$mode" = drwxr-xr-x ] || fail "directory $path has mode $mode" ;;
    -*) [ -n "${EXPECTED[$path]:-}" ] || fail "unexpected file in the package: $path"
        [ "$mode" = "${EXPECTED[$path]}" ] || fail "$path has mode $mode, expected ${EXPECTED[$path]}"
        FOUND[$path]=1 ;;
    *) fail "unexpected entry in the package: $mode $path" ;;
    esac
done < "$WORK/contents"
for path in "${!EXPECTED[@]}"; do
    [ -n "${FOUND[$path]:-}" ] || fail "$path is missing from the package"
done

dpkg-deb -I "$DEB" > "$WORK/info"
sed 's/^/    /' "$WORK/info"
[ "$(dpkg-deb -f "$DEB" Package)" = "$PKG" ] || fail "Package field"
[ "$(dpkg-deb -f "$DEB" Architecture)" = "$arch" ] || fail "Architecture field"
depends=$(dpkg-deb -f "$DEB" Depends)
# dpkg-shlibdeps' versioned library packages, and adduser for postinst.
for dep in 'libc6 (>= ' 'libstdc++6 (>= ' 'libsqlite3-0 (>= ' 'libwebsockets' 'libnats' 'adduser'; do
    [[ "$depends" == *"$dep"* ]] || fail "Depends lacks '$dep': $depends"
done
mkdir "$WORK/control"
dpkg-deb -e "$DEB" "$WORK/control"
[ "$(cat "$WORK/control/conffiles")" = /etc/evstream/serve.toml ] ||
    fail "conffiles is not exactly /etc/evstream/serve.toml: $(cat "$WORK/control/conffiles")"
for script in postinst prerm postrm; do
    [ "$(stat -c %a "$WORK/control/$script")" = 755 ] || fail "control/$script is not mode 0755"
    sh -n "$WORK/control/$script" || fail "control/$script has a syntax error"
done
[ -f "$WORK/control/md5sums" ] || fail "no md5sums"

mkdir "$WORK/root"
dpkg-deb -x "$DEB" "$WORK/root"
unit_value() { sed -n "s/^$1=//p" "$2"; }
[ "$(unit_value User "$WORK/root$UNIT")" = evstream ] || fail "the packaged unit has no User=evstream"
[ "$(unit_value Group "$WORK/root$UNIT")" = evstream ] || fail "the packaged unit has no Group=evstream"
[ -z "$(unit_value DynamicUser "$WORK/root$UNIT")" ] || fail "the packaged unit keeps DynamicUser"
[ "$(unit_value StateDirectory "$WORK/root$UNIT")" = evstream ] || fail "no StateDirectory=evstream"
! grep -q /usr/local "$WORK/root$UNIT" || fail "the packaged unit mentions /usr/local"
exec_start=$(unit_value ExecStart "$WORK/root$UNIT")
if "$WORK/root/usr/bin/evstream" serve --help | grep -q -- '--config'; then
    has_config=yes
    expected_exec="/usr/bin/evstream serve --config $CONF"
else  # until serve has --config, the example unit's --db line, moved to /usr/bin
    has_config=no
    expected_exec="/usr/bin/evstream serve --db $DATA/evstream.db"
fi
[ "$exec_start" = "$expected_exec" ] || fail "packaged ExecStart=$exec_start, expected $expected_exec"
zcat "$WORK/root/usr/share/doc/evstream/changelog.gz" > "$WORK/changelog"
changelog_version=$(dpkg-parsechangelog -l "$WORK/changelog" -S Version)
[ "$changelog_version" = "$version" ] ||
    fail "the changelog's latest entry is $changelog_version, the package $version"
say "contents, control files and unit: ok (ExecStart=$exec_start)"

# --- 2. lintian -----------------------------------------------------------------------------
say "lintian $(lintian --version | awk '{print $2}'):"
# As nobody (lintian warns against root), on a copy it can read.
cp "$DEB" "$WORK/lintian.deb"
chmod 0644 "$WORK/lintian.deb"
if ! timeout "$STEP_TIMEOUT" env -i PATH=/usr/bin:/bin HOME=/nonexistent \
        setpriv --reuid=nobody --regid=nogroup --clear-groups \
        lintian --fail-on error --display-info --tag-display-limit 0 "$WORK/lintian.deb" \
        > "$WORK/lintian" 2>&1; then
    sed 's/^/    /' "$WORK/lintian"
    fail "lintian reports errors (above)"
fi
sed 's/^/    /' "$WORK/lintian"
say "lintian: no errors ($(grep -c '^W: ' "$WORK/lintian" || true) warnings," \
    "$(grep -c '^I: ' "$WORK/lintian" || true) infos)"

# --- 3. install, and serve as the evstream user ---------------------------------------------
install_deb() {
    if ! timeout "$STEP_TIMEOUT" dpkg -i "$DEB" > "$WORK/dpkg-i.log" 2>&1; then
        # Only for missing dependencies: apt installs them and configures the package.
        grep -q 'dependency problems' "$WORK/dpkg-i.log" || { cat "$WORK/dpkg-i.log" >&2; fail "dpkg -i"; }
        say "dpkg -i: dependencies missing, apt-get install -f"
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -f -y -qq >&2 ||
            fail "apt-get install -f"
    fi
    expect_status ii "dpkg -i"
}
install_deb
say "installed"
getent passwd evstream > "$WORK/passwd" || fail "no evstream user"
IFS=: read -r _ _ uid gid _ home shell < "$WORK/passwd"
[ "$uid" -lt 1000 ] || fail "evstream is not a system user (uid $uid)"
[ "$home" = "$DATA" ] || fail "evstream's home is $home, not $DATA"
[ "$shell" = /usr/sbin/nologin ] || fail "evstream's shell is $shell"
[ "$(getent group evstream | cut -d: -f3)" = "$gid" ] || fail "evstream's primary group is not evstream"
[ "$(owner_mode "$DATA")" = "evstream:evstream 750" ] ||
    fail "$DATA is $(owner_mode "$DATA"), expected evstream:evstream 750"
for path in "${!EXPECTED[@]}"; do
    [ -f "${path#.}" ] || fail "${path#.} was not installed"
done
[ "$(dpkg-query -W -f='${Conffiles}' "$PKG" | awk '{print $1}')" = "$CONF" ] ||
    fail "dpkg does not list $CONF as a conffile"
[ "$(/usr/bin/evstream --version)" = "evstream $version" ] ||
    fail "/usr/bin/evstream --version says $(/usr/bin/evstream --version)"
bash -c 'source /usr/share/bash-completion/completions/evstream && complete -p evstream' \
    >/dev/null || fail "the bash completion does not load"
if command -v systemd-analyze >/dev/null; then
    timeout 60 systemd-analyze verify "$UNIT" > "$WORK/verify" 2>&1 ||
        { cat "$WORK/verify" >&2; fail "systemd-analyze verify $UNIT"; }
    [ ! -s "$WORK/verify" ] || { cat "$WORK/verify" >&2; fail "systemd-analyze verify warns"; }
    say "systemd-analyze verify $UNIT: clean"
fi

# An admin enables the service (systemctl works offline too, e.g. in a container): the purge
# below must remove that link.
if command -v systemctl >/dev/null; then
    systemctl enable evstream.service > "$WORK/enable.log" 2>&1 ||
        { cat "$WORK/enable.log" >&2; fail "systemctl enable evstream"; }
    [ -L "$WANTS_LINK" ] ||
        fail "systemctl enable made no multi-user.target.wants link"
fi

# As the service runs it: the evstream user, in its data directory, with the packaged settings;
# --port 0 (a free port) on 127.0.0.1 instead of the configured 8000.
if [ "$has_config" = yes ]; then
    serve_args=(--config "$CONF" --host 127.0.0.1 --port 0)
else
    serve_args=(--db "$DATA/evstream.db" --host 127.0.0.1 --port 0)
fi
(cd "$DATA" && exec setpriv --reuid=evstream --regid=evstream --init-groups \
    /usr/bin/evstream serve "${serve_args[@]}") > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVER_PID=$!
deadline=$((SECONDS + SERVE_TIMEOUT))
url=
while [ -z "$url" ]; do
    url=$(head -n 1 "$WORK/serve.out")
    [ -n "$url" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.err" >&2; fail "serve exited early"; }
    [ "$SECONDS" -lt "$deadline" ] || fail "serve printed no URL within ${SERVE_TIMEOUT}s"
    sleep 0.1
done
[[ "$url" =~ ^ws://127\.0\.0\.1:([0-9]+)$ ]] || fail "serve printed '$url'"
port=${BASH_REMATCH[1]}
say "serving as evstream: $url (serve ${serve_args[*]})"
python3 - "$port" <<'EOF' || fail "GET /api/health or POST /api/events"
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
with urllib.request.urlopen(base + "/api/health", timeout=10) as r:
    assert r.status == 200, r.status
    assert r.headers.get_content_type() == "application/json", r.headers["Content-Type"]
    health = json.load(r)
assert health.get("status") == "ok", health
print("deb_test: GET /api/health: 200", json.dumps(health)[:200])
req = urllib.request.Request(base + "/api/events", data=b'{"camera_id":"deb-test"}',
                             headers={"Content-Type": "application/json"}, method="POST")
with urllib.request.urlopen(req, timeout=10) as r:
    assert r.status == 201, r.status
    print("deb_test: POST /api/events:", r.status, r.read().decode())
EOF
kill -TERM "$SERVER_PID"
deadline=$((SECONDS + SERVE_TIMEOUT))
while kill -0 "$SERVER_PID" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "serve did not exit within ${SERVE_TIMEOUT}s of SIGTERM"
    sleep 0.1
done
serve_rc=0; wait "$SERVER_PID" || serve_rc=$?
SERVER_PID=
[ "$serve_rc" = 0 ] || { cat "$WORK/serve.err" >&2; fail "serve exited $serve_rc after SIGTERM"; }
[ "$(stat -c %U "$DATA/evstream.db")" = evstream ] || fail "the database is not owned by evstream"
say "serve: health 200, one event stored in $DATA/evstream.db, exit 0 on SIGTERM"

# --- 4. reinstall, remove, purge ------------------------------------------------------------
echo "# deb_test: a local edit" >> "$CONF"
install_deb  # the same version again: the upgrade path of the maintainer scripts
grep -q '^# deb_test: a local edit$' "$CONF" || fail "a reinstall lost the local edit of $CONF"
say "reinstall: the local edit of $CONF kept"

timeout "$STEP_TIMEOUT" dpkg --remove "$PKG" > "$WORK/dpkg-r.log" 2>&1 ||
    { cat "$WORK/dpkg-r.log" >&2; fail "dpkg -r"; }
expect_status rc "dpkg -r"
for path in "${!EXPECTED[@]}"; do
    [ "${path#.}" = "$CONF" ] || [ ! -e "${path#.}" ] || fail "dpkg -r left ${path#.}"
done
grep -q '^# deb_test: a local edit$' "$CONF" || fail "dpkg -r did not keep $CONF"
[ -f "$DATA/evstream.db" ] || fail "dpkg -r removed the database"
getent passwd evstream >/dev/null || fail "dpkg -r removed the evstream user"
say "dpkg -r: files gone; $CONF, $DATA and the user kept"

timeout "$STEP_TIMEOUT" dpkg --purge "$PKG" > "$WORK/dpkg-P.log" 2>&1 ||
    { cat "$WORK/dpkg-P.log" >&2; fail "dpkg -P"; }
expect_status un "dpkg -P"
[ ! -e /etc/evstream ] || fail "dpkg -P left /etc/evstream: $(ls -A /etc/evstream)"
[ -f "$DATA/evstream.db" ] || fail "dpkg -P deleted a data directory that held a database"
grep -q "kept $DATA" "$WORK/dpkg-P.log" || fail "dpkg -P did not say it kept $DATA"
say "dpkg -P: $CONF gone; $DATA kept, as it holds a database: $(grep "kept $DATA" "$WORK/dpkg-P.log")"

# Without a database, a purge leaves nothing of the package but its user.
rm -f "$DATA"/evstream.db*
install_deb
[ "$(owner_mode "$DATA")" = "evstream:evstream 750" ] || fail "a fresh install did not adopt $DATA"
timeout "$STEP_TIMEOUT" dpkg --purge "$PKG" > "$WORK/dpkg-P2.log" 2>&1 ||
    { cat "$WORK/dpkg-P2.log" >&2; fail "dpkg -P (empty data directory)"; }
expect_status un "dpkg -P"
for path in "${!EXPECTED[@]}" ./etc/evstream ./usr/share/doc/evstream; do
    [ ! -e "${path#.}" ] || fail "after the purge ${path#.} is still there"
done
[ ! -e "$DATA" ] || fail "dpkg -P left the empty $DATA"
leftover=$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
    /var/lib/systemd/deb-systemd-helper-masked -name 'evstream*' 2>/dev/null || true)
[ -z "$leftover" ] || fail "systemd links left: $leftover"
! pgrep -u evstream >/dev/null || fail "processes of the evstream user are still running"
getent passwd evstream >/dev/null || fail "the purge removed the evstream user (it should stay)"
say "dpkg -P: nothing left but the evstream user (kept by design; the test removes it)"

ok=yes
say "PASS"

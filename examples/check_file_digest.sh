#!/usr/bin/env bash
# check_file_digest.sh PROGRAM - checks examples/file_digest.c on a directory with known files.
#
# The file list of the project's own src/ changes as the project evolves, so file_digest has
# no .expected file; this script (run by CTest, see examples/CMakeLists.txt) builds a small
# tree whose digests are known - three of them are the published FNV-1a 64 test vectors -
# and compares the program's stdout with them, several times, since the work is spread over
# threads and the output must not depend on how. It also checks an empty directory and a
# missing one.
set -euo pipefail

prog=${1:?usage: check_file_digest.sh PROGRAM}
work=$(mktemp -d "${TMPDIR:-/tmp}/file_digest_check.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---- the tree ----------------------------------------------------------------------------
dir=$work/tree
mkdir -p "$dir/sub/deeper" "$dir/many"
: > "$dir/empty"                                   # FNV-1a 64 of "":       cbf29ce484222325
printf 'a' > "$dir/a.txt"                          # FNV-1a 64 of "a":      af63dc4c8601ec8c
printf 'foobar' > "$dir/sub/foobar.txt"            # FNV-1a 64 of "foobar": 85944171f73967e8
printf 'hello, world\n' > "$dir/sub/deeper/with space.txt"
# Several 64 KiB chunks: the digest tasklet yields between them.
{ yes 'libslp file_digest check' || true; } | head -c 300000 > "$dir/big.bin" # yes: SIGPIPE
# More files than worker tasklets, so every worker gets several.
for i in $(seq 1 24); do
    for ((k = 1; k <= i; k++)); do printf 'file %d line %d\n' "$i" "$k"; done \
        > "$dir/many/f$(printf %02d "$i").txt"
done
ln -s a.txt "$dir/link"                            # not followed, not listed

expected=$work/expected
cat > "$expected" <<'EOF'
af63dc4c8601ec8c        1 a.txt
df17d004dc89d705   300000 big.bin
cbf29ce484222325        0 empty
db48f73404ace7bd       14 many/f01.txt
36a81c317d2380d6       28 many/f02.txt
afe04239d13046d6       42 many/f03.txt
2912a921b85fa579       56 many/f04.txt
cd82df7b6051eef5       70 many/f05.txt
7c7ee3d2a168ca3a       84 many/f06.txt
fd7f864598c158be       98 many/f07.txt
fa8c9ea9ecab45fd      112 many/f08.txt
6e83f57ecf10a4cd      126 many/f09.txt
bb17bb3339a76867      151 many/f10.txt
8e9f1289d5cd6417      167 many/f11.txt
48db616a7d27d6d4      183 many/f12.txt
3031b2c8bfa624fc      199 many/f13.txt
9c17e85240c36c33      215 many/f14.txt
0df1680ad99ba17b      231 many/f15.txt
567f3cd23f274f48      247 many/f16.txt
8035c8508d364fd8      263 many/f17.txt
d25f6a7d4b7dc647      279 many/f18.txt
ab93d54985f55527      295 many/f19.txt
0988252f0e692305      311 many/f20.txt
e02e552b995f8c75      327 many/f21.txt
edba4f4a2ea1a932      343 many/f22.txt
a9ebf7f704a1bec6      359 many/f23.txt
eee73a1e36b593b1      375 many/f24.txt
e60e7ee648829675       13 sub/deeper/with space.txt
85944171f73967e8        6 sub/foobar.txt
total: 29 files, 304595 bytes, 0 unreadable
EOF

fail() {
    echo "check_file_digest: FAILED: $*" >&2
    exit 1
}

# ---- the known tree, several runs (also with a trailing slash on the directory) ----------
for run in 1 2 3 4 5; do
    arg=$dir
    [ "$run" = 5 ] && arg=$dir/
    rc=0
    "$prog" "$arg" > "$work/actual" 2> "$work/stderr" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$work/stderr" >&2
        fail "run $run: exit status $rc"
    fi
    if ! diff -u "$expected" "$work/actual"; then
        cat "$work/stderr" >&2
        fail "run $run: output differs from the expected digests"
    fi
done
echo "check_file_digest: known tree: 5 runs, output as expected"

# ---- an empty directory: no work at all, the shutdown must still be orderly ---------------
mkdir "$work/nothing"
out=$("$prog" "$work/nothing" 2> "$work/stderr") || { cat "$work/stderr" >&2; fail "empty directory: exit status $?"; }
[ "$out" = "total: 0 files, 0 bytes, 0 unreadable" ] || fail "empty directory: unexpected output: $out"
echo "check_file_digest: empty directory: ok"

# ---- a directory that does not exist: an error, not a hang or a crash ---------------------
rc=0
"$prog" "$work/does-not-exist" > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "missing directory: exit status $rc, expected 1"
echo "check_file_digest: missing directory: exit status 1, as expected"

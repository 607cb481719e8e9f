#!/bin/sh
# Build examples/c/hello.c against an installed nsboot with pkg-config,
# dynamically and statically, and run both; compile the header strictly
# as C99 and as C++.
# Usage: examples/c/check.sh PREFIX   (after `make install PREFIX=PREFIX`)
set -eu
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 PREFIX   (a directory holding an nsboot install: make install PREFIX=PREFIX)" >&2
    exit 2
fi
prefix=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
CC=${CC:-cc}
CXX=${CXX:-c++}
cflags=$(pkg-config --cflags nsboot)

printf '#include <nsboot.h>\nint main(void) { return nsboot_version() == 0; }\n' > "$work/h.c"
$CC -std=c99 -Wall -Wextra -Werror -pedantic $cflags -c "$work/h.c" -o "$work/h99.o"
$CXX -x c++ -std=c++11 -Wall -Wextra -Werror $cflags -c "$work/h.c" -o "$work/hxx.o"
echo "ok: header compiles as C99 and C++11 with -Wall -Wextra -Werror"

# shellcheck disable=SC2046
$CC -std=c99 -Wall -Wextra -Werror -o "$work/hello-dynamic" "$here/hello.c" $(pkg-config --cflags --libs nsboot)
# shellcheck disable=SC2046
$CC -std=c99 -Wall -Wextra -Werror -o "$work/hello-static" "$here/hello.c" $(pkg-config --cflags --libs nsboot-static)
# shellcheck disable=SC2046
$CC -std=c99 -Wall -Wextra -Werror -o "$work/hello-static-pc" "$here/hello.c" $(pkg-config --cflags nsboot) \
    -Wl,--undefined=nsexec "$prefix/lib/libnsboot.a" $(pkg-config --static --libs-only-l nsboot | sed 's/-lnsboot//')

needed=$(readelf -d "$work/hello-dynamic" | sed -n 's/.*(NEEDED).*\[\(libnsboot[^]]*\)\].*/\1/p')
[ "$needed" = "libnsboot.so.0" ] || { echo "FAIL: hello-dynamic needs '$needed', not libnsboot.so.0"; exit 1; }
if readelf -d "$work/hello-static" | grep -q 'libnsboot'; then
    echo "FAIL: hello-static depends on libnsboot.so"; exit 1
fi
echo "ok: dynamic build needs libnsboot.so.0; static build does not"

for v in dynamic static static-pc; do
    out=$(LD_LIBRARY_PATH="$prefix/lib" "$work/hello-$v")
    echo "$out" | sed "s/^/  hello-$v: /"
    echo "$out" | grep -q '^inside: uid=0 hostname=nsboot-hello$' || { echo "FAIL: hello-$v did not run inside"; exit 1; }
    echo "$out" | grep -q '^outside: child [0-9]* exited with 0$' || { echo "FAIL: hello-$v status"; exit 1; }
done
echo "ok: examples/c/hello.c runs, dynamic and static"

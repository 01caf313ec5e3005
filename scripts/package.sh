#!/usr/bin/env bash
# Builds the Debian package build-deb/gr-ria_VERSION_ARCH.deb: a second build, configured for /usr (Debian's
# layout: multiarch libraries, /usr/lib/python3/dist-packages), packed by CPack. Prints the package's path.
# Install it with: sudo apt install ./build-deb/gr-ria_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build-deb/CMakeCache.txt ]; then
    cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DPYTHON_EXECUTABLE=/usr/bin/python3 >/dev/null
fi
if ! cmake --build build-deb -j"$(nproc)" >build-deb/build.log 2>&1; then
    tail -n 40 build-deb/build.log
    echo "package: the build failed; the whole log is build-deb/build.log" >&2
    exit 1
fi
rm -f build-deb/gr-ria_*.deb
if ! (cd build-deb && cpack -G DEB >cpack.log 2>&1); then
    tail -n 40 build-deb/cpack.log
    echo "package: cpack failed; the whole log is build-deb/cpack.log" >&2
    exit 1
fi
ls build-deb/gr-ria_*.deb

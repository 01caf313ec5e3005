#!/usr/bin/env bash
# Installs everything gr-ria needs on Debian 12 and builds it into ./.prefix.
# Safe to run again: it only installs what is missing and rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
    gnuradio-dev libsoapysdr-dev python3-soapysdr soapysdr-tools libspeexdsp-dev pybind11-dev
    nlohmann-json3-dev libssl-dev libopus-dev
    cmake g++ make pkg-config python3-venv python3-zmq python3-pil python3-scipy espeak-ng sox chromium
    dpkg-dev mmdebstrap systemd
    nats-server
)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# GNU Radio lives in Debian's interpreter; the venv sees it through --system-site-packages.
# numpy must stay Debian's (GNU Radio is compiled against it), so nothing here pulls it in.
if [ ! -x .venv/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt

if [ ! -f build/CMakeCache.txt ]; then
    cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$PWD/.prefix" -DPYTHON_EXECUTABLE=/usr/bin/python3 >/dev/null
fi
if ! cmake --build build -j"$(nproc)" >build/build.log 2>&1; then
    tail -n 40 build/build.log
    echo "setup: the build failed; the whole log is build/build.log" >&2
    exit 1
fi
cmake --install build >/dev/null
echo "setup: gr-ria built and installed into $PWD/.prefix"

#!/bin/sh
# mmdebstrap's customize hook for tests/test_package.py: $1 a fresh Debian 12 root, $2 the .deb, $3 a host folder
# for the results, $4 an example .grc. Installs the package as a user would (`apt install ./gr-ria_*.deb`, its
# dependencies from the Debian mirror), then runs each check in the root with a clean environment: its output goes
# to $3/NAME.out, its exit status to $3/NAME.rc.
set -u
root=$1 deb=$2 out=$3 grc=$4
run() {
    name=$1
    shift
    start=$(date +%s)
    chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        "$@" >"$out/$name.out" 2>&1
    echo $? >"$out/$name.rc"
    echo $(($(date +%s) - start)) >"$out/$name.seconds"
}
cp "$deb" "$root/tmp/"
# `apt` deletes what it downloaded; keep it, so the test can cache it for the next run (mmdebstrap's sync-out)
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/99gr-ria-test-cache"
# a throw-away root: no fsync after every file (as Debian's container images do)
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/gr-ria-test-unsafe-io"
cp "$grc" "$root/tmp/example.grc"
run install sh -c "cd /tmp && apt install -y ./$(basename "$deb")"
run python python3 -c 'import gnuradio.ria as m; print(m.__file__); from gnuradio import ria; print(ria.sdr_source("driver=riasim").state())'
run detect ria_agent.py detect --simulator
run user id ria-agent
run state stat -c '%U %a' /var/lib/ria-agent
run unregistered runuser -u ria-agent -- ria_agent.py --config /var/lib/ria-agent/agent.json run
run grcc sh -c 'cd /tmp && grcc -o /tmp example.grc'
run flowgraph sh -c 'timeout 60 python3 -u /tmp/sdr_source_headless.py'
run purge sh -c 'apt-get purge -y gr-ria && ls -d /var/lib/ria-agent /usr/lib/python3/dist-packages/gnuradio/ria /lib/systemd/system/ria-agent.service 2>&1'
exit 0

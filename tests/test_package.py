"""The Debian package: built by CPack (scripts/package.sh), installed with `apt install ./gr-ria_*.deb` into a clean
Debian 12 root made by mmdebstrap (dependencies from the Debian mirror), and run from there.

The downloaded .debs are kept in ~/.cache/gr-ria/apt-archives (RIA_APT_CACHE), so a rerun downloads only the
package lists; each run still starts from an empty root.
"""

import os
import re
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("RIA_APT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gr-ria", "apt-archives")
MIRRORS = ("deb http://deb.debian.org/debian bookworm main", "deb http://deb.debian.org/debian bookworm-updates main",
           "deb http://deb.debian.org/debian-security bookworm-security main")
UNIT = "lib/systemd/system/ria-agent.service"
# The local build's variables (scripts/env.sh) must not reach the clean root.
LOCAL_VARS = ("PYTHONPATH", "LD_LIBRARY_PATH", "SOAPY_SDR_PLUGIN_PATH", "GRC_BLOCKS_PATH", "VIRTUAL_ENV")


def clean_env():
    env = {k: v for k, v in os.environ.items() if k not in LOCAL_VARS}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    return env


@pytest.fixture(scope="module")
def deb():
    started = time.monotonic()
    result = subprocess.run(["bash", os.path.join(ROOT, "scripts", "package.sh")], capture_output=True, text=True,
                            timeout=3600, env=clean_env())
    assert result.returncode == 0, result.stdout + result.stderr
    path = os.path.join(ROOT, result.stdout.strip().splitlines()[-1])
    print(f"package built in {time.monotonic() - started:.0f} s: {path}")
    return path


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory):
    folder = tmp_path_factory.mktemp("deb")
    subprocess.run(["dpkg-deb", "-x", deb, str(folder)], check=True, timeout=120)
    return folder


@pytest.fixture(scope="module")
def clean_root(deb, tmp_path_factory):
    """The results of tests/package_root_check.sh in a fresh bookworm root: {name: (exit status, output)}."""
    out = tmp_path_factory.mktemp("root-checks")
    os.makedirs(CACHE, exist_ok=True)
    check = os.path.join(ROOT, "tests", "package_root_check.sh")
    grc = os.path.join(ROOT, "examples", "sdr_source_headless.grc")
    started = time.monotonic()
    result = subprocess.run(
        ["mmdebstrap", "--variant=apt", "--mode=root", "--format=null", "--skip=download/empty",
         "--skip=essential/unlink",
         "--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/",
         f"--setup-hook=sync-in {CACHE} /var/cache/apt/archives/",
         f"--customize-hook=sh {check} \"$1\" {deb} {out} {grc}",
         f"--customize-hook=sync-out /var/cache/apt/archives {CACHE}",
         "bookworm", "/dev/null", *MIRRORS],
        capture_output=True, text=True, timeout=3600, env=clean_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    checks = {}
    for name in os.listdir(out):
        if name.endswith(".rc"):
            base = name[:-3]
            with open(out / name) as rc, open(out / f"{base}.out", errors="replace") as text:
                checks[base] = (int(rc.read()), text.read())
    seconds = {n[:-8]: (out / n).read_text().strip() for n in os.listdir(out) if n.endswith(".seconds")}
    print(f"clean root made and checked in {time.monotonic() - started:.0f} s; per check (s): {seconds}")
    return checks


def field(deb, name):
    return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True, check=True).stdout.strip()


def test_package_depends_on_debians_gnuradio_soapysdr_and_what_the_libraries_link(deb):
    assert os.path.basename(deb) == f"gr-ria_0.1.0_{subprocess.check_output(['dpkg', '--print-architecture'], text=True).strip()}.deb"
    depends = [d.strip() for d in field(deb, "Depends").split(",")]
    names = {re.match(r"[\w.+-]+", d).group(0) for d in depends}
    # from dpkg-shlibdeps (the .so files) and by hand (Python modules, the interpreter, the service user)
    assert {"gnuradio", "python3-soapysdr", "python3-numpy", "python3", "adduser", "libsoapysdr0.8", "libspeexdsp1",
            "libfftw3-single3", "libssl3", "libc6", "libstdc++6", "libopus0"} <= names, depends
    assert any(n.startswith("libgnuradio-runtime") for n in names), depends
    assert any(n.startswith("libvolk") for n in names), depends
    assert "python3 (<< 3.12)" in depends  # the binding is built for one Python ABI


def test_files_land_where_debian_looks(unpacked):
    arch = subprocess.check_output(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], text=True).strip()
    for rel in ("usr/lib/python3/dist-packages/gnuradio/ria/__init__.py",
                f"usr/lib/{arch}/SoapySDR/modules0.8/libriasimSupport.so",
                "usr/share/gnuradio/grc/blocks/ria_sdr_source.block.yml",
                "usr/bin/ria_agent.py", UNIT, "lib/udev/rules.d/60-ria-radios.rules",
                "usr/share/doc/gr-ria/blacklist-rtl28xxu.conf", "usr/share/doc/gr-ria/capacity.md"):
        assert (unpacked / rel).exists(), rel
    assert list((unpacked / "usr/lib/python3/dist-packages/gnuradio/ria").glob("ria_python*.so"))
    assert list((unpacked / f"usr/lib/{arch}").glob("libgnuradio-ria.so.*"))
    with open(unpacked / "usr/bin/ria_agent.py") as f:
        assert f.readline().strip() == "#!/usr/bin/python3"


def unit_settings(text):
    """Every Key=value line of a unit (comments and sections dropped), in order."""
    return [line.strip() for line in text.splitlines() if re.match(r"^[A-Za-z]+=", line.strip())]


def test_shipped_unit_is_hardened_and_does_not_restart_on_a_config_error(unpacked):
    unit = unpacked / UNIT
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60)
    exposure = re.search(r"Overall exposure level for ria-agent\.service: ([\d.]+)", result.stdout)
    assert exposure, result.stdout + result.stderr
    assert float(exposure.group(1)) <= 3.0, result.stdout
    settings = unit_settings(unit.read_text())
    assert "RestartPreventExitStatus=78 2" in settings and "Restart=on-failure" in settings
    assert "ExecStart=/usr/bin/python3 /usr/bin/ria_agent.py run --health-port 8700 --buffer-size 16384" in settings
    # USB radios stay reachable: no PrivateDevices, a device list with the USB character devices
    assert not any(s.startswith("PrivateDevices=") for s in settings)
    assert "DevicePolicy=closed" in settings and "DeviceAllow=char-usb_device rw" in settings
    assert "User=ria-agent" in settings and "SupplementaryGroups=plugdev" in settings


def test_docs_show_the_shipped_unit_for_a_source_install(unpacked):
    with open(os.path.join(ROOT, "docs", "operations.md")) as f:
        block = re.search(r"```ini\n(.*?)```", f.read(), re.S).group(1)
    shipped = [s for s in unit_settings((unpacked / UNIT).read_text()) if not s.startswith("Documentation=")]
    documented = [s.replace("/usr/local/bin/", "/usr/bin/") for s in unit_settings(block)]
    assert documented == shipped


def test_udev_rules_give_plugdev_the_common_usb_radios(unpacked):
    rules = (unpacked / "lib/udev/rules.d/60-ria-radios.rules").read_text()
    ids = re.findall(r'ATTR\{idVendor\}=="(\w{4})", ATTR\{idProduct\}=="(\w{4})", MODE="0660", GROUP="plugdev"', rules)
    for radio, vid_pid in {"RTL-SDR": ("0bda", "2838"), "HackRF One": ("1d50", "6089"), "Airspy": ("1d50", "60a1"),
                           "bladeRF 2.0": ("2cf0", "5250"), "LimeSDR USB": ("1d50", "6108"),
                           "LimeSDR Mini": ("0403", "601f"), "PlutoSDR": ("0456", "b673")}.items():
        assert vid_pid in ids, radio
    blacklist = (unpacked / "usr/share/doc/gr-ria/blacklist-rtl28xxu.conf").read_text()
    assert "\nblacklist dvb_usb_rtl28xxu\n" in blacklist


def test_apt_installs_it_on_a_clean_debian_12_and_the_agent_runs(clean_root):
    rc, out = clean_root["install"]
    assert rc == 0, out[-4000:]
    assert re.search(r"^Setting up gr-ria \(0\.1\.0\)", out, re.M), out[-4000:]
    assert re.search(r"^Setting up gnuradio ", out, re.M)  # pulled from the mirror, not here before
    rc, out = clean_root["python"]
    assert (rc, out.split()) == (0, ["/usr/lib/python3/dist-packages/gnuradio/ria/__init__.py", "closed"]), out
    rc, out = clean_root["detect"]
    assert rc == 0 and re.search(r"^mock\s+riasim\s+", out, re.M), out
    assert re.search(r"SoapySDR drivers installed: .*\briasim\b", out), out  # in SoapySDR's own module folder


def test_package_makes_the_service_user_and_its_private_state_folder(clean_root):
    rc, out = clean_root["user"]
    assert rc == 0 and "(ria-agent)" in out and "(plugdev)" in out, out
    assert clean_root["state"] == (0, "ria-agent 700\n")


def test_unregistered_agent_exits_78_so_systemd_does_not_restart_it(clean_root):
    rc, out = clean_root["unregistered"]
    assert rc == 78, out
    assert "this agent is not registered" in out and "ria_agent.py register" in out


def test_grc_finds_the_blocks_and_a_flowgraph_runs_in_the_clean_root(clean_root):
    rc, out = clean_root["grcc"]
    assert rc == 0 and "Error" not in out, out
    rc, out = clean_root["flowgraph"]
    assert rc == 0 and "(event . streaming)" in out, out


def test_purge_removes_the_package_and_the_agents_credentials(clean_root):
    rc, out = clean_root["purge"]
    assert "Purging configuration files for gr-ria" in out, out
    for path in ("/var/lib/ria-agent", "/usr/lib/python3/dist-packages/gnuradio/ria",
                 "/lib/systemd/system/ria-agent.service"):
        assert f"cannot access '{path}'" in out, out


@pytest.fixture(scope="module", autouse=True)
def tools():
    missing = [t for t in ("cpack", "dpkg-shlibdeps", "mmdebstrap", "systemd-analyze") if not shutil.which(t)]
    assert not missing, f"{missing}: scripts/setup.sh installs them"
    assert os.geteuid() == 0, "the clean root is made with mmdebstrap --mode=root and chroot: run the tests as root"

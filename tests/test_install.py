"""The build installs into a fresh prefix, and that prefix alone is a working gr-ria."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        pytest.fail("no build/ here: run scripts/setup.sh (scripts/test.sh does) first")
    dest = tmp_path_factory.mktemp("prefix")
    subprocess.run(["cmake", "--install", BUILD, "--prefix", str(dest)], check=True,
                   capture_output=True, timeout=300)
    return dest


def prefix_env(prefix):
    pydirs = [p for p in prefix.glob("lib/python3*/*-packages")]
    assert len(pydirs) == 1, pydirs
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "SOAPY_SDR_PLUGIN_PATH", "GRC_BLOCKS_PATH")}
    env["PYTHONPATH"] = str(pydirs[0])
    env["SOAPY_SDR_PLUGIN_PATH"] = str(prefix / "lib" / "SoapySDR" / "modules0.8")
    return env


def test_files_land_where_gnuradio_and_soapysdr_look(prefix):
    for rel in ("include/gnuradio/ria/sdr_source.h", "include/gnuradio/ria/api.h",
                "share/gnuradio/grc/blocks/ria_sdr_source.block.yml",
                "lib/SoapySDR/modules0.8/libriasimSupport.so", "bin/ria_agent.py"):
        assert (prefix / rel).exists(), rel
    assert list(prefix.glob("lib/libgnuradio-ria.so*"))
    assert list(prefix.glob("lib/python3*/*-packages/gnuradio/ria/ria_python*.so"))


def test_installed_prefix_works_on_its_own(prefix):
    env = prefix_env(prefix)
    code = ("from gnuradio import ria; import gnuradio.ria as m; print(m.__file__); "
            "s = ria.sdr_source('driver=riasim'); print(s.state())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [os.path.join(env["PYTHONPATH"], "gnuradio", "ria", "__init__.py"), "closed"]
    found = subprocess.run(["SoapySDRUtil", "--find=driver=riasim"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert "driver = riasim" in found.stdout

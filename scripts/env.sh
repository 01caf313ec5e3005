# Sourced by the other scripts: makes the gr-ria in ./.prefix visible to Python, GRC and SoapySDR.
ria_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ria_pydir="$(ls -d "$ria_root"/.prefix/lib/python3*/*-packages 2>/dev/null | head -n 1)"
export PYTHONPATH="$ria_pydir${PYTHONPATH:+:$PYTHONPATH}"
export LD_LIBRARY_PATH="$ria_root/.prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export SOAPY_SDR_PLUGIN_PATH="$ria_root/.prefix/lib/SoapySDR/modules0.8"
export GRC_BLOCKS_PATH="$ria_root/.prefix/share/gnuradio/grc/blocks"
export PATH="$ria_root/.venv/bin:$ria_root/.prefix/bin:$PATH"

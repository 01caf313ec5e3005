"""A riasim transmitter in a process of its own, for the air tests.

    riasim_tone_tx.py SERIAL FREQ_HZ RATE GAIN_DB TONE_HZ AMPLITUDE   transmits a tone until SIGTERM
    riasim_tone_tx.py --hold SERIAL...                                  starts a burst on each and waits

Prints "on" once the first samples were taken (and "holding" with --hold).
"""

import signal
import sys
import threading

import numpy as np
import SoapySDR
from SoapySDR import SOAPY_SDR_CF32, SOAPY_SDR_END_BURST, SOAPY_SDR_TX


def open_tx(serial, freq=433.9e6, rate=1e6, gain=40.0):
    dev = SoapySDR.Device(f"driver=riasim,serial={serial}")
    dev.setSampleRate(SOAPY_SDR_TX, 0, rate)
    dev.setFrequency(SOAPY_SDR_TX, 0, freq)
    dev.setGain(SOAPY_SDR_TX, 0, gain)
    stream = dev.setupStream(SOAPY_SDR_TX, SOAPY_SDR_CF32, [0])
    dev.activateStream(stream)
    return dev, stream


def tone(serial, freq, rate, gain, tone_hz, amplitude):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dev, stream = open_tx(serial, freq, rate, gain)
    n, written = 10000, 0
    while not stop.is_set():
        k = np.arange(written, written + n)
        x = (amplitude * np.exp(2j * np.pi * tone_hz / rate * k)).astype(np.complex64)
        ret = dev.writeStream(stream, [x], n, timeoutUs=100000).ret
        if ret > 0:
            if written == 0:
                print("on", flush=True)
            written += ret
    dev.writeStream(stream, [np.zeros(0, np.complex64)], 0, SOAPY_SDR_END_BURST)
    dev.deactivateStream(stream)
    dev.closeStream(stream)


def hold(serials):
    radios = [open_tx(s) for s in serials]
    for dev, stream in radios:
        x = np.full(1000, 0.5, np.complex64)
        assert dev.writeStream(stream, [x], len(x)).ret > 0
    print("holding", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    if sys.argv[1] == "--hold":
        hold(sys.argv[2:])
    else:
        serial, *numbers = sys.argv[1:]
        tone(serial, *map(float, numbers))

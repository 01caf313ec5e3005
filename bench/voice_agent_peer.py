"""A voice agent alone in a process, for bench_voice.py: ria.voice_agent with its speaker output wired back
into its microphone input at half level (the echo canceller runs on a plain echo), no throttle (the hub's pace is the
clock). Each line "cpu" on stdin is answered with the process's CPU seconds so far; EOF ends it."""

import os
import sys

from gnuradio import blocks, gr

from gnuradio import ria


def main():
    url, token, rate, sample_format = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    tb = gr.top_block()
    agent = ria.voice_agent(url=url, token=token, sample_rate=rate, sample_format=sample_format, queue_seconds=0.2)
    tb.echo = blocks.multiply_const_ff(0.5)  # the room: half the speaker's level, no delay
    tb.connect(agent, tb.echo, agent)
    tb.start()
    print("started", flush=True)
    for line in sys.stdin:
        if line.strip() == "cpu":
            t = os.times()
            print(f"cpu {t.user + t.system:.4f}", flush=True)
    tb.stop()
    tb.wait()


if __name__ == "__main__":
    main()

"""Access log lines without query strings: agents may authenticate with ?token=, and tokens never reach a log."""

from aiohttp.abc import AbstractAccessLogger


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request, response, time):
        self.logger.info("%s %s %s %d %.1f ms", request.remote, request.method, request.path, response.status,
                         time * 1000)

"""A prober: calls a check every `interval` seconds in a thread while a change happens, and
tells how long the registry was unavailable.

    with Prober(http_check('127.0.0.11', 5000), interval=0.05) as prober:
        change_something()
    assert prober.longest_outage() < 2

A check returns (ok, detail): detail (a status code, an exception's name) explains failures.
"""
import http.client
import ssl
import threading
import time


def http_check(host, port, path='/v2/', up=(200,), headers=None, timeout=0.5, tls=None,
               registry=False):
    """GET path on a new connection each time; ok when the status is in up (and, with
    registry, the answer carries the registry's API version header: not just anything on
    the port). tls: an ssl.SSLContext for HTTPS (None: plain HTTP)."""
    def check():
        if tls is None:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        else:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
        try:
            conn.request('GET', path, headers=headers or {})
            response = conn.getresponse()
            response.read()
            if registry and response.getheader('Docker-Distribution-Api-Version') is None:
                return False, 'not a registry'
            return response.status in up, response.status
        except (OSError, http.client.HTTPException) as error:
            return False, type(error).__name__
        finally:
            conn.close()
    return check


def unverified_tls():
    """A client context that does not check the server (its CA changes mid-rotation)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Prober:
    def __init__(self, check, interval=0.02, wait_serving=False):
        """wait_serving: entering waits (10 s at most) for 3 successes, so that the window
        starts while the registry serves."""
        self.check, self.interval, self.wait_serving = check, interval, wait_serving
        self.results = []  # (monotonic start, ok, detail)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        next_tick = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            ok, detail = self.check()
            self.results.append((started, ok, detail))
            next_tick = max(next_tick + self.interval, time.monotonic())
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def __enter__(self):
        self._thread.start()
        if self.wait_serving:
            deadline = time.monotonic() + 10
            while self.successes() < 3:
                assert time.monotonic() < deadline, \
                    'registry not answering before the change: {}'.format(self.results[-5:])
                time.sleep(self.interval)
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)  # a tail of probes after the change returned
        self._stop.set()
        self._thread.join(5)

    def successes(self):
        return sum(1 for _, ok, _ in self.results if ok)

    def failures(self):
        return [(t, detail) for t, ok, detail in self.results if not ok]

    def outages(self):
        """[(start, seconds)] of every run of failed probes (one still running at the end
        lasts until the last probe)."""
        runs, start = [], None
        for when, ok, _ in self.results:
            if not ok and start is None:
                start = when
            elif ok and start is not None:
                runs.append((start, when - start))
                start = None
        if start is not None:
            runs.append((start, self.results[-1][0] - start))
        return runs

    def longest_outage(self):
        return max((seconds for _, seconds in self.outages()), default=0.0)

    def longest_gap(self):
        """Longest time between two consecutive successful probes."""
        ok_times = [t for t, ok, _ in self.results if ok]
        return max((b - a for a, b in zip(ok_times, ok_times[1:])), default=0.0)

    def summary(self, label):
        failures = self.failures()
        return ('{}: {} probes, {} failed, longest gap between successes {:.0f} ms, '
                'failure kinds {}'.format(label, len(self.results), len(failures),
                                          self.longest_gap() * 1000,
                                          sorted({str(d) for _, d in failures})))

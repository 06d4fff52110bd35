"""Shared pieces of the DiffRhythm worker tests: paths, a worker process driver, WAV checks.

ctest passes the stand-in checkout and the worker script by environment; run by hand
(`cd tests/diffrhythm/python && /usr/bin/python3 -m unittest`) they are found from here.
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.environ.get("DIFFRHYTHM_STANDIN_HOME") or os.path.normpath(
    os.path.join(HERE, "..", "standin"))
WORKER = os.environ.get("SONGD_DIFFRHYTHM_WORKER") or os.path.normpath(
    os.path.join(HERE, "..", "..", "..", "engines", "diffrhythm", "songd_worker.py"))
PYTHON = sys.executable  # ctest runs the suite with Debian's /usr/bin/python3 (torch inside)

# Generous: a deadline only bounds a test that is already failing; a passing one never waits.
DEADLINE = 120.0

SAMPLES_95 = 2048 * 2048


def samples_for(audio_length):
    if audio_length == 95:
        return SAMPLES_95
    return int(audio_length * 44100 / 2048) * 2048


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFRHYTHM_STANDIN_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def request(job, path, **fields):
    body = {"id": job, "lyrics": "[00:01.00]Hello there\n[00:04.00]Sing along\n[00:08.00]Bye",
            "style_prompt": "pop, piano", "audio_length": 95, "steps": 4, "cfg_strength": 2.0,
            "seed": 7, "batch": 1, "chunked": True, "output_path": path}
    for key, value in fields.items():
        if value is Ellipsis:
            body.pop(key, None)
        else:
            body[key] = value
    return body


class Worker:
    """songd_worker.py run as songd runs it, with every stdout line checked to be protocol."""

    def __init__(self, work_dir, *args, env=None, home=STANDIN):
        self.stderr_path = os.path.join(work_dir, f"worker-{time.monotonic_ns()}.stderr")
        self.stderr_file = open(self.stderr_path, "wb")
        self.process = subprocess.Popen(
            [PYTHON, WORKER, "--home", home, *args], cwd=home, env=env or clean_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file)
        self.lines = queue.Queue()
        self.not_protocol = []  # stdout lines that are not one JSON object with "event"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.process.stdout:
            try:
                event = json.loads(raw.decode("utf-8"))
                if not isinstance(event, dict) or "event" not in event:
                    raise ValueError("not an event")
            except ValueError:
                self.not_protocol.append(raw)
                continue
            self.lines.put(event)
        self.lines.put(None)  # EOF

    def next_event(self, deadline=DEADLINE):
        try:
            return self.lines.get(timeout=deadline)
        except queue.Empty:
            raise AssertionError(f"no worker event within {deadline} s; stderr: {self.stderr()}")

    def expect(self, name, deadline=DEADLINE):
        event = self.next_event(deadline)
        if event is None or event.get("event") != name:
            raise AssertionError(f"expected {name}, got {event}; stderr: {self.stderr()}")
        return event

    def start(self):
        """Reads hello .. ready; returns (hello, [loaded...], ready)."""
        hello = self.expect("hello")
        loaded = []
        while True:
            event = self.next_event()
            if event is None:
                raise AssertionError(f"worker exited before ready; stderr: {self.stderr()}")
            if event["event"] == "ready":
                return hello, loaded, event
            if event["event"] != "loaded":
                raise AssertionError(f"unexpected before ready: {event}")
            loaded.append(event)

    def send(self, body):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        self.process.stdin.write(data + b"\n")
        self.process.stdin.flush()

    def run(self, body, deadline=DEADLINE):
        """Sends one request; returns (events of it in order, the final done/error event)."""
        self.send(body)
        events = []
        while True:
            event = self.next_event(deadline)
            if event is None:
                raise AssertionError(f"worker exited mid-request; stderr: {self.stderr()}")
            events.append(event)
            if event.get("event") in ("done", "error"):
                return events, event

    def stderr(self, tail=2000):
        if not self.stderr_file.closed:
            self.stderr_file.flush()
        with open(self.stderr_path, "rb") as f:
            data = f.read()
        return data[-tail:].decode("utf-8", "replace")

    def close(self, deadline=DEADLINE):
        """EOF on stdin; returns the exit status."""
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        try:
            return self.process.wait(timeout=deadline)
        finally:
            self.stderr_file.close()
            self.process.stdout.close()

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.stderr_file.close()
        self.process.stdout.close()
        if self.process.stdin:
            self.process.stdin.close()


def wav_info(path):
    import torchaudio

    info = torchaudio.info(path)
    return info.sample_rate, info.num_channels, info.num_frames, info.bits_per_sample


def wav_rms(path):
    import torchaudio

    audio, _ = torchaudio.load(path)
    return float(audio.pow(2).mean().sqrt())


def read_record(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()

"""Each stand-in fault in worker mode gives its documented outcome (engines/diffrhythm/PROTOCOL.md).

Faults fire once (DIFFRHYTHM_STANDIN_FAULT_TIMES=1, counted in a state directory), so each test
also shows the worker serving the next song normally after the fault.
"""

import os
import signal
import tempfile
import unittest

import support
from support import Worker, request


class WorkerFaultTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name

    def start(self, fault, *args, **env):
        worker = Worker(self.dir, *args, env=support.clean_env(
            DIFFRHYTHM_STANDIN_FAULT=fault, DIFFRHYTHM_STANDIN_FAULT_TIMES=1,
            DIFFRHYTHM_STANDIN_STATE_DIR=os.path.join(self.dir, "state"), **env))
        self.addCleanup(worker.kill)
        return worker

    def out(self, name):
        return os.path.join(self.dir, name + ".wav")

    def test_each_recoverable_fault_answers_its_code_and_the_worker_serves_on(self):
        # Four faults switched on, each firing once, in the order a request meets them.
        worker = self.start("missing_weights,oom,nan,nofile")
        _, _, ready = worker.start()
        self.assertEqual(ready["models_loaded"], [])  # lazy: ready at once
        expected = [("missing_weights", "model_load", "HF_HUB_OFFLINE"),
                    ("oom", "out_of_memory", "CUDA out of memory"),
                    ("nan", "internal", "NaN"),
                    ("nofile", "internal", "no output written")]
        for job, code, words in expected:
            with self.subTest(job):
                _, last = worker.run(request(job, self.out(job)))
                self.assertEqual((last["event"], last["id"], last["code"]),
                                 ("error", job, code), last)
                self.assertIn(words, last["message"])
                self.assertFalse(os.path.exists(self.out(job)))
                self.assertEqual([n for n in os.listdir(self.dir) if n.endswith(".part.wav")],
                                 [])
        _, done = worker.run(request("after", self.out("after")))
        self.assertEqual(done["event"], "done", done)
        self.assertEqual(support.wav_info(self.out("after"))[2], support.SAMPLES_95)
        self.assertEqual(worker.not_protocol, [])
        self.assertEqual(worker.close(), 0)
        self.assertIn("Cannot find the requested files", worker.stderr(20 * 1024 * 1024))

    def test_missing_weights_at_preload_exits_3(self):
        worker = self.start("missing_weights", "--preload", "95")
        worker.expect("hello")
        self.assertIsNone(worker.next_event())
        self.assertEqual(worker.close(), 3)
        self.assertIn("loading the 95 model failed", worker.stderr().strip().splitlines()[-1])

    def test_garbage_on_stdout_stays_off_the_protocol(self):
        worker = self.start("garbage")
        worker.start()
        _, done = worker.run(request("a", self.out("a")))
        self.assertEqual(done["event"], "done", done)
        self.assertEqual(worker.not_protocol, [])
        self.assertEqual(worker.close(), 0)
        # the junk went to stderr instead
        self.assertIn("this is not a protocol line", worker.stderr(20000))
        self.assertIn("<garbage on stdout>", worker.stderr(20000))

    def test_stderr_flood_then_done(self):
        worker = self.start("stderr_flood")
        worker.start()
        _, done = worker.run(request("a", self.out("a")))
        self.assertEqual(done["event"], "done", done)
        self.assertEqual(worker.close(), 0)
        self.assertGreaterEqual(os.path.getsize(worker.stderr_path), 10 * 1024 * 1024)

    def test_slow_load_delays_loaded_and_ready(self):
        worker = self.start("slow_load", "--preload", "95", DIFFRHYTHM_STANDIN_LOAD_SECONDS=1)
        worker.expect("hello")
        loaded = worker.expect("loaded")
        worker.expect("ready")
        # the worker's own measure of the load (about 0.0 s without the fault)
        self.assertGreaterEqual(loaded["seconds"], 1.0)
        self.assertEqual(worker.close(), 0)

    def test_crash_mid_sampling_kills_the_worker_without_an_answer(self):
        worker = self.start("crash")
        worker.start()
        worker.send(request("a", self.out("a")))
        events = []
        while (event := worker.next_event()) is not None:
            events.append(event)
        self.assertIn("sampling", [e.get("phase") for e in events])
        self.assertNotIn("done", [e["event"] for e in events])
        self.assertNotIn("error", [e["event"] for e in events])
        self.assertEqual(worker.process.wait(timeout=support.DEADLINE), -signal.SIGKILL)
        self.assertFalse(os.path.exists(self.out("a")))
        # "crash once": a new worker (as songd would restart it) renders the retried job
        again = self.start("crash")
        again.start()
        _, done = again.run(request("a", self.out("a")))
        self.assertEqual(done["event"], "done", done)

    def test_hang_mid_sampling_answers_nothing_until_killed(self):
        worker = self.start("hang", DIFFRHYTHM_STANDIN_STEP_SECONDS=0)
        worker.start()
        worker.send(request("a", self.out("a"), steps=8))
        # A song takes well under a second here; the hung one falls silent mid-sampling.
        events = []
        while True:
            try:
                event = worker.next_event(deadline=3)
            except AssertionError:
                break
            self.assertIsNotNone(event, "the worker exited")
            self.assertIn(event["event"], ("progress", "loaded"), event)
            if event["event"] == "progress":
                events.append(event)
        self.assertEqual(events[-1]["phase"], "sampling")
        self.assertLess(events[-1]["percent"], 85)
        self.assertIsNone(worker.process.poll())
        worker.process.send_signal(signal.SIGKILL)
        self.assertEqual(worker.process.wait(timeout=support.DEADLINE), -signal.SIGKILL)


if __name__ == "__main__":
    unittest.main()

"""songd_worker.py over its real stdin/stdout against the stand-in: framing, songs, bad input,
seeds, steps/cfg reaching the sampler, lazy loading, EOF."""

import os
import tempfile
import unittest

import support
from support import Worker, request


class WorkerProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.record = os.path.join(cls.dir, "record.jsonl")
        cls.worker = Worker(cls.dir, "--preload", "95",
                            env=support.clean_env(DIFFRHYTHM_STANDIN_RECORD=cls.record,
                                                  CUDA_VISIBLE_DEVICES="3"))
        cls.hello, cls.loaded, cls.ready = cls.worker.start()

    @classmethod
    def tearDownClass(cls):
        status = cls.worker.close()
        cls.tmp.cleanup()
        assert status == 0, f"worker exit status {status} at EOF"

    def tearDown(self):
        self.assertEqual(self.worker.not_protocol, [], "stdout carried non-protocol lines")

    def out(self, name):
        return os.path.join(self.dir, name)

    def render(self, name, **fields):
        events, last = self.worker.run(request(name, self.out(name + ".wav"), **fields))
        self.assertEqual(last["event"], "done", last)
        return events, last

    def test_start_lines(self):
        self.assertEqual(self.hello["protocol"], 1)
        self.assertEqual(self.hello["device"], "cpu")
        self.assertEqual(self.hello["pid"], self.worker.process.pid)
        self.assertTrue(self.hello["torch"])
        self.assertEqual([e["model"] for e in self.loaded], ["95"])
        self.assertIsInstance(self.loaded[0]["seconds"], float)
        self.assertEqual(self.ready["models_loaded"], ["95"])

    def test_song_progress_and_file(self):
        events, done = self.render("song", steps=8)
        self.assertEqual(done["id"], "song")
        self.assertEqual(done["output_path"], self.out("song.wav"))
        self.assertEqual(done["seed"], 7)
        self.assertGreaterEqual(done["seconds"], 0)
        progress = [e for e in events if e["event"] == "progress"]
        self.assertTrue(all(e["id"] == "song" for e in events))
        percents = [e["percent"] for e in progress]
        self.assertEqual(percents, sorted(set(percents)), "progress must strictly rise")
        phases = [e["phase"] for e in progress]
        for phase in ("encoding_style", "sampling", "decoding", "saving"):
            self.assertIn(phase, phases)
        self.assertNotIn("loading_model", phases)  # preloaded
        # sampling reports each step, not just its start
        self.assertGreaterEqual(phases.count("sampling"), 5)
        self.assertEqual(support.wav_info(done["output_path"]),
                         (44100, 2, support.SAMPLES_95, 16))
        self.assertGreater(support.wav_rms(done["output_path"]), 0.05)
        leftovers = [n for n in os.listdir(self.dir) if n.endswith(".part.wav")]
        self.assertEqual(leftovers, [])

    def test_same_seed_same_bytes_other_seed_other_bytes(self):
        self.render("seed-a", seed=1234)
        self.render("seed-b", seed=1234)
        self.render("seed-c", seed=1235)
        a = support.file_bytes(self.out("seed-a.wav"))
        self.assertEqual(a, support.file_bytes(self.out("seed-b.wav")))
        self.assertNotEqual(a, support.file_bytes(self.out("seed-c.wav")))

    def test_steps_cfg_seed_batch_reach_the_sampler(self):
        before = len(support.read_record(self.record))
        self.render("settings", steps=6, cfg_strength=2.5, seed=99, batch=2, chunked=False,
                    lyrics="[00:02.00]la la")
        entries = support.read_record(self.record)[before:]
        self.assertEqual(len(entries), 1, entries)
        entry = entries[0]
        self.assertEqual(entry["mode"], "worker")
        self.assertEqual(entry["pid"], self.worker.process.pid)
        self.assertEqual(entry["cuda_visible_devices"], "3")
        self.assertEqual(entry["device"], "cpu")
        self.assertEqual((entry["steps"], entry["cfg_strength"], entry["seed"]), (6, 2.5, 99))
        self.assertEqual((entry["batch"], entry["chunked"]), (2, False))
        self.assertEqual(entry["lrc"], "[00:02.00]la la")
        self.assertEqual((entry["ref_prompt"], entry["ref_audio_path"]), ("pop, piano", None))
        self.assertEqual(entry["audio_length"], 95)
        self.assertLessEqual(entry["start"], entry["end"])

    def test_extremes_songd_accepts_render(self):
        before = len(support.read_record(self.record))
        events, _ = self.render("extremes", steps=1, cfg_strength=0, seed=2**64 - 1)
        entry = support.read_record(self.record)[before]
        self.assertEqual((entry["steps"], entry["cfg_strength"], entry["seed"]),
                         (1, 0.0, 2**64 - 1))

    def test_without_a_seed_done_names_the_one_used(self):
        before = len(support.read_record(self.record))
        _, done = self.render("unseeded", seed=...)
        self.assertIsInstance(done["seed"], int)
        self.assertEqual(support.read_record(self.record)[before]["seed"], done["seed"])

    def test_requests_sent_at_once_are_served_one_after_the_other(self):
        self.worker.send(request("first", self.out("first.wav")))
        self.worker.send(request("second", self.out("second.wav")) | {"lyrics": ""})
        order = []
        while len([e for e in order if e[1] in ("done", "error")]) < 2:
            event = self.worker.next_event()
            self.assertIsNotNone(event)
            order.append((event.get("id"), event["event"]))
        ids = [job for job, _ in order]
        first_done = order.index(("first", "done"))
        self.assertEqual(set(ids[: first_done + 1]), {"first"})
        self.assertEqual(set(ids[first_done + 1:]), {"second"})
        self.assertEqual(order[-1], ("second", "done"))

    def test_steps_and_cfg_change_the_song(self):
        self.render("s4", steps=4, cfg_strength=2.0)
        self.render("s32", steps=32, cfg_strength=2.0)
        self.render("c6", steps=4, cfg_strength=6.0)
        base = support.file_bytes(self.out("s4.wav"))
        self.assertNotEqual(base, support.file_bytes(self.out("s32.wav")))
        self.assertNotEqual(base, support.file_bytes(self.out("c6.wav")))

    def test_full_model_loads_lazily_once(self):
        events, done = self.render("full", audio_length=120, lyrics="")
        loaded = [e for e in events if e["event"] == "loaded"]
        self.assertEqual([e["model"] for e in loaded], ["full"])
        phases = [e.get("phase") for e in events if e["event"] == "progress"]
        self.assertEqual(phases[0], "loading_model")
        self.assertEqual(support.wav_info(done["output_path"])[2], support.samples_for(120))
        self.assertEqual(support.samples_for(120), 2583 * 2048)
        events, _ = self.render("full-again", audio_length=200, lyrics="")
        self.assertEqual([e for e in events if e["event"] == "loaded"], [])

    def test_reference_audio_instead_of_prompt(self):
        import torch
        import torchaudio

        clip = self.out("ref.wav")
        t = torch.arange(44100 * 12) / 44100
        torchaudio.save(clip, (0.3 * torch.sin(2 * torch.pi * 220 * t)).repeat(2, 1), 44100)
        before = len(support.read_record(self.record))
        self.render("ref", style_prompt=..., ref_audio_path=clip)
        entry = support.read_record(self.record)[before]
        self.assertEqual((entry["ref_prompt"], entry["ref_audio_path"]), (None, clip))

    def test_bad_requests_answer_bad_input_and_the_worker_keeps_serving(self):
        import torch
        import torchaudio

        short = self.out("short.wav")
        torchaudio.save(short, torch.zeros(2, 44100 * 2), 44100)
        out = self.out("bad.wav")
        cases = {
            "no id": request(..., out, id=...),
            "no lyrics": request("b", out, lyrics=...),
            "lyrics not text": request("b", out, lyrics=5),
            "no audio_length": request("b", out, audio_length=...),
            "length 94": request("b", out, audio_length=94),
            "length 286": request("b", out, audio_length=286),
            "length as text": request("b", out, audio_length="95"),
            "length as bool": request("b", out, audio_length=True),
            "both style and ref": request("b", out, ref_audio_path=short),
            "neither style nor ref": request("b", out, style_prompt=...),
            "empty style": request("b", out, style_prompt=""),
            "ref missing": request("b", out, style_prompt=..., ref_audio_path="/nonexistent.wav"),
            "ref not audio": request("b", out, style_prompt=..., ref_audio_path=self.record),
            "ref too short": request("b", out, style_prompt=..., ref_audio_path=short),
            "steps 0": request("b", out, steps=0),
            "steps huge": request("b", out, steps=100000),
            "cfg negative": request("b", out, cfg_strength=-1),
            "cfg text": request("b", out, cfg_strength="4"),
            "seed negative": request("b", out, seed=-5),
            "batch 0": request("b", out, batch=0),
            "chunked text": request("b", out, chunked="yes"),
            "no output_path": request("b", out, output_path=...),
            "relative output": request("b", "raw.wav"),
            "output dir missing": request("b", self.out("nope/raw.wav")),
        }
        for name, body in cases.items():
            with self.subTest(name):
                events, last = self.worker.run(body)
                self.assertEqual(last["event"], "error", last)
                self.assertEqual(last["code"], "bad_input", last)
                self.assertTrue(last["message"])
                self.assertNotIn("\n", last["message"])
                self.assertEqual(last["id"], "" if name == "no id" else "b")
                self.assertEqual(len(events), 1 if name != "ref too short" else len(events))
                self.assertFalse(os.path.exists(out))
        for name, raw in {"not json": "{nope", "json array": "[1,2]", "id number":
                          '{"id": 5}'}.items():
            with self.subTest(name):
                _, last = self.worker.run(raw)
                self.assertEqual((last["event"], last["code"], last["id"]),
                                 ("error", "bad_input", ""))
        # still serving
        self.render("after-bad")


class WorkerStartTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def test_preload_both_classes(self):
        worker = Worker(self.tmp.name, "--preload", "95,285")
        _, loaded, ready = worker.start()
        self.assertEqual([e["model"] for e in loaded], ["95", "full"])
        self.assertEqual(ready["models_loaded"], ["95", "full"])
        self.assertEqual(worker.close(), 0)

    def test_not_a_checkout_exits_2_with_one_clear_line(self):
        worker = Worker(self.tmp.name, home=self.tmp.name)
        self.assertIsNone(worker.next_event())  # stdout closes with no line at all
        self.assertEqual(worker.close(), 2)
        self.assertIn("is not a DiffRhythm checkout", worker.stderr().strip().splitlines()[-1])

    def test_bad_preload_and_unavailable_device_exit_2(self):
        for args, words in ((["--preload", "120x"], "--preload"),
                            (["--device", "cuda"], "--device cuda")):
            with self.subTest(args):
                worker = Worker(self.tmp.name, *args)
                while worker.next_event() is not None:
                    pass
                self.assertEqual(worker.close(), 2)
                self.assertIn(words, worker.stderr().strip().splitlines()[-1])


if __name__ == "__main__":
    unittest.main()

"""The stand-in's infer/infer.py run as songd's cli mode runs upstream's: flags, checks, output."""

import os
import subprocess
import tempfile
import unittest

import support


class StandinCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        self.lrc = os.path.join(self.dir, "lyrics.lrc")
        with open(self.lrc, "w", encoding="utf-8") as f:
            f.write("[00:01.00]Hello there\n[00:04.00]Sing along\n[00:08.00]Bye\n")
        self.record = os.path.join(self.dir, "record.jsonl")
        self.out = os.path.join(self.dir, "out")

    def infer(self, *args, cwd=support.STANDIN, **env):
        env.setdefault("DIFFRHYTHM_STANDIN_RECORD", self.record)
        return subprocess.run(
            [support.PYTHON, os.path.join(support.STANDIN, "infer", "infer.py"), *args],
            cwd=cwd, env=support.clean_env(**env), capture_output=True,
            timeout=support.DEADLINE)

    def test_song_of_upstream_length_and_the_record(self):
        result = self.infer("--lrc-path", self.lrc, "--ref-prompt", "pop, piano",
                            "--audio-length", "95", "--output-dir", self.out, "--chunked",
                            CUDA_VISIBLE_DEVICES="1")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        song = os.path.join(self.out, "output.wav")
        self.assertEqual(support.wav_info(song), (44100, 2, support.SAMPLES_95, 16))
        self.assertGreater(support.wav_rms(song), 0.05)
        (entry,) = support.read_record(self.record)
        self.assertEqual(entry["mode"], "cli")
        self.assertEqual(entry["cuda_visible_devices"], "1")
        # upstream's inference() fixes the sampler's settings; cli mode cannot change them
        self.assertEqual((entry["steps"], entry["cfg_strength"]), (32, 4.0))
        self.assertEqual((entry["audio_length"], entry["chunked"], entry["batch"]), (95, True, 1))
        self.assertEqual(entry["ref_prompt"], "pop, piano")
        # no seed flag: the seed is whatever torch starts with, as upstream
        self.assertIsInstance(entry["seed"], int)

    def test_full_length_class(self):
        result = self.infer("--lrc-path", self.lrc, "--ref-prompt", "rock",
                            "--audio-length", "150", "--output-dir", self.out, "--chunked",
                            "--batch-infer-num", "2")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        info = support.wav_info(os.path.join(self.out, "output.wav"))
        self.assertEqual(info[2], support.samples_for(150))
        self.assertEqual(support.read_record(self.record)[0]["batch"], 2)

    def test_bad_arguments_fail_like_upstream(self):
        clip = os.path.join(self.dir, "ref.wav")
        open(clip, "wb").close()
        cases = {
            "neither style": (["--lrc-path", self.lrc], "either ref_prompt or ref_audio_path"),
            "both styles": (["--ref-prompt", "pop", "--ref-audio-path", clip],
                            "only one of them"),
            "length 94": (["--ref-prompt", "pop", "--audio-length", "94"],
                          "Invalid audio_length: 94"),
            "length 286": (["--ref-prompt", "pop", "--audio-length", "286"],
                           "Invalid audio_length: 286"),
            "unknown flag": (["--ref-prompt", "pop", "--steps", "8"], "unrecognized arguments"),
        }
        for name, (args, words) in cases.items():
            with self.subTest(name):
                result = self.infer(*args, "--output-dir", self.out)
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(words, result.stderr.decode())
                self.assertFalse(os.path.exists(os.path.join(self.out, "output.wav")))
        self.assertEqual(support.read_record(self.record), [])

    def test_must_run_from_the_checkout_root(self):
        result = self.infer("--ref-prompt", "pop", "--output-dir", self.out, cwd=self.dir)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("No module named 'model'", result.stderr.decode())

    def test_nofile_exits_0_without_output(self):
        result = self.infer("--ref-prompt", "pop", "--output-dir", self.out, "--chunked",
                            DIFFRHYTHM_STANDIN_FAULT="nofile")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertTrue(os.path.isdir(self.out))
        self.assertFalse(os.path.exists(os.path.join(self.out, "output.wav")))

    def test_oom_exits_1_with_the_cuda_message(self):
        result = self.infer("--ref-prompt", "pop", "--output-dir", self.out, "--chunked",
                            DIFFRHYTHM_STANDIN_FAULT="oom")
        self.assertEqual(result.returncode, 1)
        self.assertIn("torch.cuda.OutOfMemoryError: CUDA out of memory",
                      result.stderr.decode())


if __name__ == "__main__":
    unittest.main()

"""songd_worker.py's pure pieces, imported in-process: OOM detection, preload parsing,
request validation limits, message shaping, and the stand-in's length arithmetic."""

import importlib.util
import os
import sys
import tempfile
import unittest

import torch

import support

_spec = importlib.util.spec_from_file_location("songd_worker", support.WORKER)
songd_worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(songd_worker)


class OutOfMemoryDetectionTest(unittest.TestCase):
    def test_memory_errors_are_recognised(self):
        cases = [
            torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
            RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; ...)"),
            RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB)"),
            RuntimeError("[enforce fail at alloc_cpu.cpp:75] DefaultCPUAllocator: can't allocate"
                         " memory: you tried to allocate 1099511627776 bytes."),
            MemoryError(),
        ]
        for error in cases:
            with self.subTest(repr(error)):
                self.assertTrue(songd_worker.is_out_of_memory(error, torch))

    def test_other_errors_are_not(self):
        for error in (RuntimeError("shape mismatch"), ValueError("out of memory"),
                      OSError("No space left on device"), AssertionError()):
            with self.subTest(repr(error)):
                self.assertFalse(songd_worker.is_out_of_memory(error, torch))


class PreloadTest(unittest.TestCase):
    def test_classes(self):
        self.assertEqual(songd_worker.parse_preload(""), [])
        self.assertEqual(songd_worker.parse_preload("95"), ["95"])
        self.assertEqual(songd_worker.parse_preload("95,285"), ["95", "full"])
        self.assertEqual(songd_worker.parse_preload(" 120 , full,96 "), ["full"])

    def test_bad_values(self):
        for text in ("94", "286", "abc", "95;285", "-95"):
            with self.subTest(text), self.assertRaises(ValueError):
                songd_worker.parse_preload(text)


class ValidateTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.out = os.path.join(self.tmp.name, "raw.wav")

    def ok(self, **fields):
        body = support.request("x", self.out, **fields)
        return songd_worker.validate(body)

    def bad(self, **fields):
        with self.assertRaises(songd_worker.BadInput):
            self.ok(**fields)

    def test_defaults(self):
        s = self.ok(steps=..., cfg_strength=..., seed=..., batch=..., chunked=...)
        self.assertEqual((s["steps"], s["cfg_strength"], s["seed"], s["batch"], s["chunked"]),
                         (32, 4.0, None, 1, True))

    def test_boundaries(self):
        for length in (95, 96, 285):
            self.assertEqual(self.ok(audio_length=length)["audio_length"], length)
        for length in (0, 94, 286, 95.0, None):
            with self.subTest(length):
                self.bad(audio_length=length)
        # at least what songd's API accepts: steps 1..200, cfg 0..50, any uint64 seed
        self.assertEqual(self.ok(steps=1)["steps"], 1)
        self.assertEqual(self.ok(steps=1000)["steps"], 1000)
        self.bad(steps=0)
        self.bad(steps=1001)
        self.bad(steps=4.5)
        self.assertEqual(self.ok(cfg_strength=0)["cfg_strength"], 0.0)
        self.assertEqual(self.ok(cfg_strength=50)["cfg_strength"], 50.0)
        self.bad(cfg_strength=100.5)
        self.bad(cfg_strength=float("nan"))
        self.assertEqual(self.ok(seed=0)["seed"], 0)
        self.assertEqual(self.ok(seed=2**64 - 1)["seed"], 2**64 - 1)
        self.bad(seed=2**64)
        self.bad(seed=True)
        self.bad(batch=17)
        self.bad(output_path=self.out[:-4] + ".mp3")

    def test_lyrics_pass_unchanged(self):
        lyrics = "[00:01.00]Hello\n[00:02.50]  spaced  \nnot a line\n"
        self.assertEqual(self.ok(lyrics=lyrics)["lyrics"], lyrics)
        self.assertEqual(self.ok(lyrics="")["lyrics"], "")


class MessageTest(unittest.TestCase):
    def test_one_line_bounded(self):
        text = songd_worker.one_line("first\nsecond\t third " + "x" * 1000)
        self.assertNotIn("\n", text)
        self.assertTrue(text.startswith("first second third"))
        self.assertEqual(len(text), songd_worker.MAX_MESSAGE)


# Upstream's signatures (ASLP-lab/DiffRhythm infer/infer_utils.py, model/cfm.py): parameter
# names and defaults the worker relies on. The stand-in must keep them.
UPSTREAM_SIGNATURES = {
    "prepare_model": "(max_frames, device, repo_id='ASLP-lab/DiffRhythm-1_2')",
    "get_lrc_token": "(max_frames, text, tokenizer, max_secs, device)",
    "get_style_prompt": "(model, wav_path=None, prompt=None)",
    "get_negative_style_prompt": "(device)",
    "get_reference_latent": "(device, max_frames, edit, pred_segments, ref_song, vae_model)",
    "decode_audio": "(latents, vae_model, chunked=False, overlap=32, chunk_size=128)",
    "encode_audio": "(audio, vae_model, chunked=False, overlap=32, chunk_size=128)",
    "parse_lyrics": "(lyrics)",
    "load_checkpoint": "(model, ckpt_path, device, use_ema=True)",
    "normalize_audio": "(y, target_dbfs=0)",
    "vae_sample": "(mean, scale)",
}
UPSTREAM_SAMPLE = (
    "(self, cond, text, duration, *, style_prompt=None, style_prompt_lens=None,"
    " negative_style_prompt=None, lens=None, steps=32, cfg_strength=4.0,"
    " sway_sampling_coef=None, seed=None, max_duration=6144, vocoder=None, no_ref_audio=False,"
    " duplicate_test=False, t_inter=0.1, edit_mask=None, start_time=None,"
    " latent_pred_segments=None, song_duration=None, batch_infer_num=1)")


def plain_signature(function):
    """The signature without annotations, as upstream's source spells it."""
    import inspect

    parameters = [p.replace(annotation=inspect.Parameter.empty)
                  for p in inspect.signature(function).parameters.values()]
    return str(inspect.Signature(parameters))


class StandinUpstreamShapeTest(unittest.TestCase):
    """What the stand-in shares with upstream: signatures, get_lrc_token's behaviour."""

    @classmethod
    def setUpClass(cls):
        cls.cwd = os.getcwd()
        os.chdir(support.STANDIN)
        sys.path[:0] = [os.path.join(support.STANDIN, "infer"), support.STANDIN]
        import infer_utils

        cls.utils = infer_utils
        cls.tokenizer = infer_utils.CNENTokenizer()

    @classmethod
    def tearDownClass(cls):
        os.chdir(cls.cwd)

    def tokens(self, max_frames, lyrics, seconds):
        lrc, _, end_frame, _ = self.utils.get_lrc_token(max_frames, lyrics, self.tokenizer,
                                                        seconds, "cpu")
        return lrc[0], end_frame

    def test_signatures_are_upstreams(self):
        for name, expected in UPSTREAM_SIGNATURES.items():
            with self.subTest(name):
                self.assertEqual(plain_signature(getattr(self.utils, name)), expected)
        from model.cfm import CFM

        self.assertEqual(" ".join(plain_signature(CFM.sample).split()), UPSTREAM_SAMPLE)

    def test_95_mode_drops_the_last_line(self):
        lyrics = "[00:01.00]aaa\n[00:10.00]bbb\n"
        lrc, end_frame = self.tokens(2048, lyrics, 95)
        self.assertEqual(end_frame, 2048)
        first, last = int(1 * 44100 / 2048), int(10 * 44100 / 2048)
        self.assertNotEqual(int(lrc[first]), 0)
        self.assertEqual(int(lrc[last:].count_nonzero()), 0)  # "bbb" is gone
        lrc, end_frame = self.tokens(6144, lyrics, 120)
        self.assertEqual(end_frame, int(120 * 44100 / 2048))
        self.assertNotEqual(int(lrc[last]), 0)  # kept in the full model


if __name__ == "__main__":
    unittest.main()

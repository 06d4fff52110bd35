#!/usr/bin/env python3
"""songd's persistent DiffRhythm worker: one process per GPU, one song at a time.

songd starts it as
    <python> songd_worker.py --home <DiffRhythm checkout> [--preload 95,285] [--device auto]
with the checkout as working directory, and talks JSON lines with it: requests on stdin, events
on stdout (engines/diffrhythm/PROTOCOL.md is the contract). The model itself is imported from
the checkout exactly as upstream's infer/infer.py imports it (`infer_utils` from <home>/infer,
`model` from <home>); this file holds no model code.

Exit status: 0 on EOF of stdin; 2 for bad arguments, a checkout that is not DiffRhythm, failed
imports or an unavailable --device; 3 when a --preload model fails to load. The reason is the
last line on stderr.
"""

import argparse
import gc
import json
import os
import sys
import time
import traceback

PROTOCOL_VERSION = 1
SAMPLE_RATE = 44100
CHANNELS = 2
MAX_FRAMES = {"95": 2048, "full": 6144}
MAX_MESSAGE = 500
# Wider than songd's API (steps 1..200, cfg 0..50, uint64 seeds) so no accepted job is refused.
LIMITS = {"steps": (1, 1000), "cfg_strength": (0.0, 100.0), "batch": (1, 16),
          "seed": (0, 2**64 - 1)}
PHASE_START = {"loading_model": 0, "encoding_style": 10, "sampling": 15, "decoding": 85,
               "saving": 95}


class Protocol:
    """The private channel to songd. Built before anything else runs (see guard_stdio)."""

    def __init__(self, out_fd, in_fd):
        self.out_fd = out_fd
        self.input = os.fdopen(in_fd, "rb", buffering=0)
        self.reader = self._lines()

    def send(self, **event):
        data = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            written = os.write(self.out_fd, view)
            view = view[written:]

    def _lines(self):
        buffer = b""
        while True:
            chunk = self.input.read(65536)
            if not chunk:
                if buffer.strip():
                    yield buffer
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line

    def read_line(self):
        """The next request line (bytes), or None at EOF."""
        return next(self.reader, None)


def guard_stdio():
    """Keeps stdin/stdout for the protocol only.

    The real stdout is duplicated to a private descriptor for protocol lines, and fd 1 (and
    sys.stdout) then point at stderr, so whatever the model or a library prints, even with
    os.write(1, ...), lands in songd's stderr log and never between protocol lines. stdin is
    likewise moved to a private descriptor and fd 0 reads /dev/null.
    """
    out_fd = os.dup(1)
    in_fd = os.dup(0)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    return Protocol(out_fd, in_fd)


def fail_start(status, message):
    sys.stderr.write(f"songd_worker: {message}\n")
    sys.stderr.flush()
    sys.exit(status)


def one_line(text):
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def length_class(audio_length):
    return "95" if audio_length == 95 else "full"


def parse_preload(text):
    classes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        if item == "full":
            name = "full"
        elif item.isdigit() and (int(item) == 95 or 96 <= int(item) <= 285):
            name = length_class(int(item))
        else:
            raise ValueError(f"--preload: {item!r} is not 95, 96..285 or full")
        if name not in classes:
            classes.append(name)
    return classes


class BadInput(Exception):
    pass


class WorkerError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def is_out_of_memory(error, torch):
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if oom_type is not None and isinstance(error, oom_type):
        return True
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    # CUDA ("CUDA out of memory"), MPS ("MPS backend out of memory"), CPU allocator.
    return isinstance(error, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text)


def _integer(request, name, default):
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{name} must be an integer")
    low, high = LIMITS[name]
    if not low <= value <= high:
        raise BadInput(f"{name} must be {low}..{high}, got {value}")
    return value


def validate(request):
    """The request's settings, checked; raises BadInput with a message songd can show."""
    lyrics = request.get("lyrics")
    if not isinstance(lyrics, str):
        raise BadInput('lyrics is required (a string; "" for an instrumental)')
    style = request.get("style_prompt") or None
    ref = request.get("ref_audio_path") or None
    if style is not None and not isinstance(style, str):
        raise BadInput("style_prompt must be a string")
    if ref is not None and not isinstance(ref, str):
        raise BadInput("ref_audio_path must be a string")
    if style and ref:
        raise BadInput("give exactly one of style_prompt and ref_audio_path, not both")
    if not style and not ref:
        raise BadInput("give exactly one of style_prompt and ref_audio_path")
    if ref is not None:
        if os.path.splitext(ref)[1].lower() not in (".mp3", ".wav", ".flac"):
            raise BadInput("ref_audio_path must be an .mp3, .wav or .flac file")
        if not os.path.isfile(ref):
            raise BadInput(f"ref_audio_path {ref} does not exist")
    audio_length = request.get("audio_length")
    if (isinstance(audio_length, bool) or not isinstance(audio_length, int)
            or not (audio_length == 95 or 96 <= audio_length <= 285)):
        raise BadInput("audio_length must be exactly 95 or an integer 96..285")
    steps = _integer(request, "steps", 32)
    batch = _integer(request, "batch", 1)
    seed = request.get("seed")
    if seed is not None:
        seed = _integer(request, "seed", None)
    cfg = request.get("cfg_strength", 4.0)
    if isinstance(cfg, bool) or not isinstance(cfg, (int, float)) or cfg != cfg:
        raise BadInput("cfg_strength must be a number")
    low, high = LIMITS["cfg_strength"]
    if not low <= cfg <= high:
        raise BadInput(f"cfg_strength must be {low}..{high}, got {cfg}")
    chunked = request.get("chunked", True)
    if not isinstance(chunked, bool):
        raise BadInput("chunked must be true or false")
    output_path = request.get("output_path")
    if not isinstance(output_path, str) or not output_path:
        raise BadInput("output_path is required")
    if not os.path.isabs(output_path) or not output_path.lower().endswith(".wav"):
        raise BadInput("output_path must be an absolute path ending in .wav")
    if not os.path.isdir(os.path.dirname(output_path)):
        raise BadInput(f"the directory of output_path {output_path} does not exist")
    return {"lyrics": lyrics, "style_prompt": style, "ref_audio_path": ref,
            "audio_length": audio_length, "steps": steps, "cfg_strength": float(cfg),
            "seed": seed, "batch": batch, "chunked": chunked, "output_path": output_path}


class Worker:
    def __init__(self, protocol, torch, torchaudio, infer_utils, device):
        self.protocol = protocol
        self.torch = torch
        self.torchaudio = torchaudio
        self.utils = infer_utils
        self.device = device
        self.cfm = {}        # length class → the CFM model of that class
        self.shared = None   # (tokenizer, muq, vae): the same for both classes, loaded once

    # ----- models

    def load(self, name):
        if name in self.cfm:
            return
        started = time.time()
        cfm, tokenizer, muq, vae = self.utils.prepare_model(MAX_FRAMES[name], self.device)
        if self.shared is None:
            self.shared = (tokenizer, muq, vae)
        else:
            # prepare_model loads MuQ and the VAE again; keep one copy of each in memory.
            del tokenizer, muq, vae
            gc.collect()
            self.empty_cache()
        self.cfm[name] = cfm
        self.protocol.send(event="loaded", model=name, seconds=round(time.time() - started, 3))

    def empty_cache(self):
        if self.device.startswith("cuda"):
            self.torch.cuda.empty_cache()

    # ----- requests

    def serve(self):
        while True:
            line = self.protocol.read_line()
            if line is None:
                return
            if not line.strip():
                continue
            self.handle(line)

    def handle(self, line):
        job = ""
        try:
            request = json.loads(line.decode("utf-8"))
            if not isinstance(request, dict):
                raise BadInput("a request is one JSON object")
            job = request.get("id")
            if not isinstance(job, str) or not job:
                job = job if isinstance(job, str) else ""
                raise BadInput("id is required (a non-empty string)")
            settings = validate(request)
        except (ValueError, BadInput) as error:  # json errors are ValueErrors
            self.protocol.send(id=job, event="error", code="bad_input",
                               message=one_line(error))
            return
        started = time.time()
        failure = None
        try:
            self.render(job, settings)
        except WorkerError as error:
            failure = (error.code, str(error))
        except Exception as error:  # noqa: BLE001: every failure becomes one error line
            code = "out_of_memory" if is_out_of_memory(error, self.torch) else "internal"
            traceback.print_exc(file=sys.stderr)
            failure = (code, f"{type(error).__name__}: {error}")
        if failure is not None:
            # Outside the except blocks: the traceback (and the tensors its frames hold) is
            # gone, so an out-of-memory cleanup can really free the GPU memory.
            self.fail(job, failure[0], failure[1], settings)
            return
        self.protocol.send(id=job, event="done", output_path=settings["output_path"],
                           seconds=round(time.time() - started, 3), seed=settings["seed"])

    def fail(self, job, code, message, settings):
        remove_quietly(temp_path(settings["output_path"]))
        if code == "out_of_memory":
            gc.collect()
            self.empty_cache()
        self.protocol.send(id=job, event="error", code=code, message=one_line(message))

    def progress(self, job, percent, phase):
        if percent > self.percent:
            self.percent = percent
            self.protocol.send(id=job, event="progress", percent=percent, phase=phase)

    def render(self, job, s):
        torch = self.torch
        self.percent = -1
        name = length_class(s["audio_length"])
        if name not in self.cfm:
            self.progress(job, PHASE_START["loading_model"], "loading_model")
            try:
                self.load(name)
            except Exception as error:  # noqa: BLE001
                traceback.print_exc(file=sys.stderr)
                if is_out_of_memory(error, torch):
                    raise WorkerError("out_of_memory", f"{type(error).__name__}: {error}")
                raise WorkerError("model_load", f"{type(error).__name__}: {error}")
        cfm = self.cfm[name]
        tokenizer, muq, vae = self.shared
        max_frames = MAX_FRAMES[name]
        if s["seed"] is None:  # reported in `done`, so even a random song can be made again
            s["seed"] = int.from_bytes(os.urandom(7), "little")
        seed = s["seed"]
        self.seed_everything(seed)

        self.progress(job, PHASE_START["encoding_style"], "encoding_style")
        lrc_prompt, start_time, end_frame, song_duration = self.utils.get_lrc_token(
            max_frames, s["lyrics"], tokenizer, s["audio_length"], self.device)
        if s["ref_audio_path"]:
            try:
                style_prompt = self.utils.get_style_prompt(muq, s["ref_audio_path"])
            except Exception as error:  # noqa: BLE001
                if is_out_of_memory(error, torch):
                    raise
                # upstream asserts >= 10 s and raises for formats it cannot read
                detail = str(error) or "it must be a readable clip of at least 10 seconds"
                raise WorkerError("bad_input",
                                  f"reference audio not usable: {type(error).__name__}: {detail}")
        else:
            style_prompt = self.utils.get_style_prompt(muq, prompt=s["style_prompt"])
        negative_style_prompt = self.utils.get_negative_style_prompt(self.device)
        latent_prompt, pred_frames = self.utils.get_reference_latent(
            self.device, max_frames, False, None, None, vae)

        self.progress(job, PHASE_START["sampling"], "sampling")
        # Seed again right before sampling: the noise the sampler draws depends on the seed only.
        self.seed_everything(seed)
        with torch.inference_mode(), self.step_progress(job, cfm, s):
            latents, _ = cfm.sample(
                cond=latent_prompt,
                text=lrc_prompt,
                duration=end_frame,
                style_prompt=style_prompt,
                max_duration=end_frame,
                song_duration=song_duration,
                negative_style_prompt=negative_style_prompt,
                steps=s["steps"],
                cfg_strength=s["cfg_strength"],
                start_time=start_time,
                latent_pred_segments=pred_frames,
                batch_infer_num=s["batch"],
            )
            # batch > 1: upstream keeps a random one of the batch; the worker keeps the first,
            # so a seed names one song.
            self.progress(job, PHASE_START["decoding"], "decoding")
            latent = latents[0].to(torch.float32).transpose(1, 2)  # [b, d, t]
            audio = self.utils.decode_audio(latent, vae, chunked=s["chunked"])
            del latents, latent
            audio = audio.to(torch.float32)
            audio = audio.permute(1, 0, 2).reshape(audio.shape[1], -1)  # [channels, samples]
            if not bool(torch.isfinite(audio).all()):
                raise WorkerError("internal", "the model produced NaN or infinite samples")
            peak = torch.max(torch.abs(audio))
            if float(peak) > 0:
                audio = audio.div(peak)
            audio = audio.clamp(-1, 1).mul(32767).to(torch.int16).cpu()

        self.progress(job, PHASE_START["saving"], "saving")
        self.save(audio, s["output_path"])

    def seed_everything(self, seed):
        import random

        random.seed(seed)
        try:
            import numpy

            numpy.random.seed(seed % 2**32)
        except ImportError:
            pass
        self.torch.manual_seed(seed)
        if self.device.startswith("cuda"):
            self.torch.cuda.manual_seed_all(seed)

    def step_progress(self, job, cfm, s):
        """Sampling progress from the transformer's calls: (steps - 1) Euler steps, each one call
        (two with classifier-free guidance). A model without `transformer` gets no step events."""
        worker = self
        calls_per_step = 1 if s["cfg_strength"] < 1e-5 else 2
        expected = max(1, (s["steps"] - 1) * calls_per_step)
        span = PHASE_START["decoding"] - PHASE_START["sampling"] - 1

        class Hook:
            def __enter__(self):
                self.calls = 0
                self.handle = None
                transformer = getattr(cfm, "transformer", None)
                if transformer is not None and hasattr(transformer, "register_forward_hook"):
                    self.handle = transformer.register_forward_hook(self.called)
                return self

            def called(self, module, inputs, output):
                self.calls += 1
                done = min(self.calls, expected) / expected
                worker.progress(job, PHASE_START["sampling"] + int(span * done), "sampling")

            def __exit__(self, *exc):
                if self.handle is not None:
                    self.handle.remove()
                return False

        return Hook()

    def save(self, audio, output_path):
        """Temp file, fsync, rename: output_path is either the whole song or absent."""
        temp = temp_path(output_path)
        remove_quietly(temp)
        self.torchaudio.save(temp, audio, sample_rate=SAMPLE_RATE)
        if not os.path.isfile(temp):
            raise WorkerError("internal", "no output written: saving the song left no file")
        with open(temp, "rb") as f:
            os.fsync(f.fileno())
        info = self.torchaudio.info(temp)
        if (info.sample_rate != SAMPLE_RATE or info.num_channels != CHANNELS
                or info.num_frames != audio.shape[1]):
            raise WorkerError(
                "internal",
                f"the saved file is not the song: {info.num_frames} frames at {info.sample_rate}"
                f" Hz x{info.num_channels}, expected {audio.shape[1]} at {SAMPLE_RATE} Hz x2")
        os.replace(temp, output_path)
        directory = os.open(os.path.dirname(output_path), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        if not os.path.isfile(output_path):
            raise WorkerError("internal", "no output written")


def temp_path(output_path):
    directory, name = os.path.split(output_path)
    return os.path.join(directory, f".{name}.{os.getpid()}.part.wav")


def remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def choose_device(torch, wanted):
    cuda = torch.cuda.is_available()
    mps_module = getattr(torch, "mps", None)
    mps = bool(getattr(getattr(torch, "backends", None), "mps", None)
               and torch.backends.mps.is_available())
    if mps_module is not None and hasattr(mps_module, "is_available"):
        mps = mps or mps_module.is_available()
    if wanted == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if wanted == "cuda" and not cuda:
        raise ValueError("--device cuda: torch.cuda.is_available() is false "
                         "(no GPU visible, or a CPU-only torch)")
    if wanted == "mps" and not mps:
        raise ValueError("--device mps: the MPS backend is not available")
    return wanted


def main(argv=None):
    parser = argparse.ArgumentParser(description="songd's DiffRhythm worker (JSON lines)")
    parser.add_argument("--home", required=True, help="the DiffRhythm checkout")
    parser.add_argument("--preload", default="", help="length classes to load at start: 95,285")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    args = parser.parse_args(argv)

    protocol = guard_stdio()

    home = os.path.abspath(args.home)
    for needed in ("infer/infer.py", "infer/infer_utils.py"):
        if not os.path.isfile(os.path.join(home, needed)):
            fail_start(2, f"--home {home} is not a DiffRhythm checkout: {needed} is missing")
    try:
        preload = parse_preload(args.preload)
    except ValueError as error:
        fail_start(2, str(error))

    # As upstream's `python infer/infer.py` from the checkout root: infer/ first on the path
    # (infer_utils), the root for `model` and the relative paths (./config, ./pretrained).
    os.chdir(home)
    sys.path[:0] = [os.path.join(home, "infer"), home]
    try:
        import torch
        import torchaudio
        import infer_utils
    except Exception as error:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        fail_start(2, f"importing DiffRhythm from {home} failed: {type(error).__name__}: {error}")
    try:
        device = choose_device(torch, args.device)
    except ValueError as error:
        fail_start(2, str(error))
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True

    protocol.send(event="hello", protocol=PROTOCOL_VERSION, device=device,
                  torch=torch.__version__, pid=os.getpid())
    worker = Worker(protocol, torch, torchaudio, infer_utils, device)
    for name in preload:
        try:
            worker.load(name)
        except Exception as error:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            fail_start(3, f"loading the {name} model failed: {type(error).__name__}: {error}")
    protocol.send(event="ready", models_loaded=sorted(worker.cfm))
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Stand-in for upstream's infer/infer_utils.py: same function names and signatures.

No weights, no network: prepare_model builds tiny deterministic modules. Like upstream, the
module must be imported with the checkout root as working directory (it adds the working
directory to sys.path to import `model`, and reads ./config/diffrhythm-1b.json).
"""

import hashlib
import json
import os
import re
import time
from sys import path

import torch
import torch.nn.functional as F
import torchaudio

path.append(os.getcwd())

from model import CFM, DiT  # noqa: E402
from model import standin  # noqa: E402

# Chatter on stdout at import, as model code and its libraries do: the worker's stdio guard
# must already be in place when it imports this module.
print("stand-in DiffRhythm: infer_utils imported (a test checkout, not the model)")

SAMPLING_RATE = 44100
DOWNSAMPLING_RATIO = 2048
IO_CHANNELS = 2
LATENT_DIM = 64

if "nofile" in standin.faults_switched_on():
    # Simulates a save that silently writes nothing (a full or vanishing disk): exit 0, no file.
    _real_save = torchaudio.save

    def _save_that_may_lose_the_file(filepath, src, sample_rate, *args, **kwargs):
        if standin.fault_fires("nofile"):
            return None
        return _real_save(filepath, src, sample_rate, *args, **kwargs)

    torchaudio.save = _save_that_may_lose_the_file


def _hash_seed(*parts):
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class _StandinMuLan(torch.nn.Module):
    """Stand-in for MuQ-MuLan: text or a 24 kHz clip → a [1, 512] style embedding."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.0))

    @property
    def device(self):
        return self.scale.device

    def forward(self, texts=None, wavs=None):
        if texts is not None:
            key = _hash_seed("text", texts)
        else:
            stats = [round(float(v), 4) for v in (wavs.abs().mean(), wavs.std(), wavs.max())]
            key = _hash_seed("wav", *stats)
        generator = torch.Generator().manual_seed(key)
        return (torch.rand(1, 512, generator=generator) * 2 - 1).to(self.device) * self.scale


class _StandinVAE:
    """Stand-in for the TorchScript VAE: latent frames [b, 64, t] ↔ audio [b, 2, t * 2048]."""

    def to(self, device):
        return self

    def decode_export(self, latents):
        latents = latents.float()
        b, _, frames = latents.shape
        n = DOWNSAMPLING_RATIO
        device = latents.device
        melody_midi = 57 + torch.round(latents[:, 0]).long() % 24
        bass_midi = 33 + torch.round(latents[:, 3]).long() % 12
        within = torch.arange(n, device=device, dtype=torch.float32) / SAMPLING_RATE

        def phase(midi):
            hz = 440.0 * torch.pow(2.0, (midi.double() - 69) / 12)  # [b, t]
            per_frame = 2 * torch.pi * hz * n / SAMPLING_RATE
            start = torch.remainder(torch.cumsum(per_frame, dim=1) - per_frame, 2 * torch.pi)
            inner = (2 * torch.pi * hz).float()[..., None] * within  # [b, t, n]
            return (start.float()[..., None] + inner).reshape(b, frames * n)

        def smooth(channel, low, high):
            values = latents[:, channel].clamp(low, high)[:, None, :]
            return F.interpolate(values, size=frames * n, mode="linear",
                                 align_corners=False)[:, 0]

        melody_phase = phase(melody_midi)
        octave = torch.sin(2 * melody_phase)
        melody = torch.sin(melody_phase).add_(octave, alpha=0.3)
        del melody_phase
        voice = smooth(2, 0.0, 1.0).mul_(octave)
        del octave
        bass = torch.sin(phase(bass_midi)).mul_(0.35)
        # A pluck every note (8 frames): one note's envelope, tiled.
        note = torch.arange(8 * n, device=device, dtype=torch.float32) / (8 * n)
        pluck = (0.4 + 0.6 * torch.exp(-4.0 * note)).repeat((frames + 7) // 8)[: frames * n]
        loud = smooth(1, 0.05, 1.0).mul_(pluck)
        left = loud * (0.6 * melody + 0.4 * voice) + bass
        right = loud * (0.45 * melody + 0.5 * voice) + bass
        return 0.5 * torch.stack([left, right], dim=1)

    def encode_export(self, audio):
        b, _, samples = audio.shape
        frames = samples // DOWNSAMPLING_RATIO
        framed = audio[:, :, : frames * DOWNSAMPLING_RATIO].reshape(b, 2, frames, -1)
        rms = framed.pow(2).mean(-1).sqrt().mean(1)  # [b, t]
        return rms[:, None, :].repeat(1, 2 * LATENT_DIM, 1)


class CNENTokenizer:
    """Stand-in tokenizer: one token per visible character (ids 3..362, 1 comma, 2 period)."""

    def encode(self, text):
        return [3 + ord(c) % 360 for c in text if not c.isspace()]

    def decode(self, token):
        return "|".join(str(t) for t in token)


def vae_sample(mean, scale):
    stdev = F.softplus(scale) + 1e-4
    latents = torch.randn_like(mean) * stdev + mean
    kl = (mean * mean + stdev * stdev - torch.log(stdev * stdev) - 1).sum(1).mean()
    return latents, kl


def normalize_audio(y, target_dbfs=0):
    return y * (10.0 ** (target_dbfs / 20.0) / torch.max(torch.abs(y)))


def load_checkpoint(model, ckpt_path, device, use_ema=True):
    return model.to(device)


def prepare_model(max_frames, device, repo_id="ASLP-lab/DiffRhythm-1_2"):
    if standin.fault_fires("slow_load"):
        time.sleep(float(os.environ.get("DIFFRHYTHM_STANDIN_LOAD_SECONDS", "30")))
    repo_id = "ASLP-lab/DiffRhythm-1_2" if max_frames == 2048 else "ASLP-lab/DiffRhythm-1_2-full"
    if standin.fault_fires("missing_weights"):
        # What huggingface_hub says with HF_HUB_OFFLINE=1 and nothing in the cache.
        raise OSError(
            f"Cannot find the requested files in the disk cache and outgoing traffic has been"
            f" disabled. To enable hf.co look-ups and downloads online, set 'HF_HUB_OFFLINE=0'"
            f" (repo {repo_id}, file cfm_model.pt).")
    with open("./config/diffrhythm-1b.json", encoding="utf-8") as f:
        model_config = json.load(f)
    cfm = CFM(
        transformer=DiT(**model_config["model"], max_frames=max_frames),
        num_channels=model_config["model"]["mel_dim"],
        max_frames=max_frames,
    )
    cfm = load_checkpoint(cfm.to(device), f"./pretrained/{repo_id}/cfm_model.pt", device)
    tokenizer = CNENTokenizer()
    muq = _StandinMuLan().to(device).eval()
    vae = _StandinVAE().to(device)
    return cfm, tokenizer, muq, vae


def get_reference_latent(device, max_frames, edit, pred_segments, ref_song, vae_model):
    if edit:
        audio, rate = torchaudio.load(ref_song)
        if rate != SAMPLING_RATE:
            audio = torchaudio.functional.resample(audio, rate, SAMPLING_RATE)
        if audio.shape[0] == 1:
            audio = audio.repeat(2, 1)
        latent = encode_audio(audio[None, :2].to(device), vae_model, chunked=True)
        mean, scale = latent.chunk(2, dim=1)
        prompt, _ = vae_sample(mean, scale)
        pred_frames = []
        for start, end in json.loads(pred_segments):
            first = 0 if start == -1 else int(start * SAMPLING_RATE / DOWNSAMPLING_RATIO)
            last = max_frames if end == -1 else int(end * SAMPLING_RATE / DOWNSAMPLING_RATIO)
            pred_frames.append((first, last))
        return prompt.transpose(1, 2), pred_frames
    return torch.zeros(1, max_frames, LATENT_DIM).to(device), [(0, max_frames)]


def get_negative_style_prompt(device):
    generator = torch.Generator().manual_seed(_hash_seed("negative"))
    return (torch.rand(1, 512, generator=generator) * 2 - 1).to(device).half()


def _audio_seconds(wav_path):
    info = torchaudio.info(wav_path)
    return info.num_frames / info.sample_rate, info.sample_rate


@torch.no_grad()
def get_style_prompt(model, wav_path=None, prompt=None):
    if prompt is not None:
        standin.context.update(ref_prompt=prompt, ref_audio_path=None)
        return model(texts=prompt).half()
    standin.context.update(ref_prompt=None, ref_audio_path=wav_path)
    ext = os.path.splitext(wav_path)[-1].lower()
    if ext not in (".mp3", ".wav", ".flac"):
        raise ValueError("Unsupported file format: {}".format(ext))
    seconds, rate = _audio_seconds(wav_path)
    if seconds < 10:
        print(f"Warning: The audio file {wav_path} is too short ({seconds:.2f} seconds)."
              " Expected at least 10 seconds.")
    assert seconds >= 10
    first = int((seconds // 2 - 5) * rate)
    clip, rate = torchaudio.load(wav_path, frame_offset=first, num_frames=int(10 * rate))
    clip = torchaudio.functional.resample(clip.mean(0, keepdim=True), rate, 24000)
    return model(wavs=clip.to(model.device)).half()


_LRC_LINE = re.compile(r"^\[(\d{2}):(\d{2}\.\d{2})\](.*)$")


def parse_lyrics(lyrics: str):
    """[(seconds, text)] of every "[mm:ss.xx]text" line; other lines are skipped silently."""
    timed = []
    for line in lyrics.strip().split("\n"):
        match = _LRC_LINE.match(line.strip())
        if match:
            timed.append((int(match.group(1)) * 60 + float(match.group(2)),
                          match.group(3).strip()))
    return timed


def get_lrc_token(max_frames, text, tokenizer, max_secs, device):
    standin.context.update(lrc=text, audio_length=max_secs)
    comma_token, period_token = 1, 2
    lines = [(start, tokenizer.encode(line)) for start, line in parse_lyrics(text)]
    lines = [(start, tokens) for start, tokens in lines if start < max_secs]
    if max_frames == 2048 and lines:
        lines = lines[:-1]  # upstream drops the last line in 95 s mode
    end_frame = max_frames if max_frames == 2048 else int(
        max_secs * SAMPLING_RATE / DOWNSAMPLING_RATIO)
    end_frame = min(end_frame, max_frames)

    lrc = torch.zeros((end_frame,), dtype=torch.long)
    next_free = 0
    for start, tokens in lines:
        tokens = [comma_token if t == period_token else t for t in tokens] + [period_token]
        first = max(int(start * SAMPLING_RATE / DOWNSAMPLING_RATIO), next_free)
        count = max(0, min(len(tokens), end_frame - first))
        lrc[first: first + count] = torch.tensor(tokens[:count], dtype=torch.long)
        next_free = first + count

    start_time = torch.tensor(0.0).unsqueeze(0).to(device).half()
    song_duration = torch.tensor(end_frame / max_frames).unsqueeze(0).to(device).half()
    return lrc.unsqueeze(0).to(device), start_time, end_frame, song_duration


def decode_audio(latents, vae_model, chunked=False, overlap=32, chunk_size=128):
    """Latents [b, 64, t] → audio [b, 2, t * 2048], whole or in overlapping chunks."""
    audio = _decode(latents, vae_model, chunked, overlap, chunk_size)
    standin.finish_decode(chunked)
    return audio


def _decode(latents, vae_model, chunked, overlap, chunk_size):
    total = latents.shape[2]
    if not chunked or total <= chunk_size:
        return vae_model.decode_export(latents)
    hop = chunk_size - overlap
    starts = list(range(0, total - chunk_size + 1, hop))
    if starts[-1] + chunk_size != total:
        starts.append(total - chunk_size)
    n = DOWNSAMPLING_RATIO
    out = torch.zeros(latents.shape[0], IO_CHANNELS, total * n, device=latents.device)
    trim = overlap // 2
    for k, start in enumerate(starts):
        audio = vae_model.decode_export(latents[:, :, start: start + chunk_size])
        # Keep each chunk's middle; the first keeps its head, the last its tail.
        lo = start if k == 0 else max(start + trim, starts[k - 1] + chunk_size - trim)
        hi = total if k == len(starts) - 1 else start + chunk_size - trim
        out[:, :, lo * n: hi * n] = audio[:, :, (lo - start) * n: (hi - start) * n]
    return out


def encode_audio(audio, vae_model, chunked=False, overlap=32, chunk_size=128):
    return vae_model.encode_export(audio)

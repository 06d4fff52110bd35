"""Stand-in for upstream's CFM (conditional flow matching) with upstream's sample() signature.

sample() integrates the stand-in DiT's flow with Euler steps on a grid of `steps` times, with
classifier-free guidance weighted by cfg_strength, from seeded noise: cheap enough that a 95 s
song samples in milliseconds, while seed, steps and cfg all change the result. Faults from
model/standin.py fire here (oom, garbage, stderr_flood at the start; crash, hang mid-way; nan
at the end).
"""

from __future__ import annotations

import os
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from model import standin


class CFM(nn.Module):
    def __init__(self, transformer: nn.Module, sigma=0.0, odeint_kwargs: dict = None,
                 odeint_options: dict = None, audio_drop_prob=0.3, cond_drop_prob=0.2,
                 style_drop_prob=0.1, lrc_drop_prob=0.1, num_channels=None,
                 frac_lengths_mask: tuple[float, float] = (0.7, 1.0),
                 vocab_char_map: dict | None = None, max_frames=2048):
        super().__init__()
        self.transformer = transformer
        self.dim = transformer.dim
        self.num_channels = num_channels
        self.max_frames = max_frames
        self.sigma = sigma

    @property
    def device(self):
        return next(self.parameters()).device

    @torch.no_grad()
    def sample(
        self,
        cond,
        text,
        duration,
        *,
        style_prompt=None,
        style_prompt_lens=None,
        negative_style_prompt=None,
        lens=None,
        steps=32,
        cfg_strength=4.0,
        sway_sampling_coef=None,
        seed: int | None = None,
        max_duration=6144,
        vocoder=None,
        no_ref_audio=False,
        duplicate_test=False,
        t_inter=0.1,
        edit_mask=None,
        start_time=None,
        latent_pred_segments=None,
        song_duration=None,
        batch_infer_num=1,
    ):
        self.eval()
        standin.begin_sample(self.device, steps, cfg_strength, batch_infer_num)
        if standin.fault_fires("oom"):
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity;"
                " 6.12 GiB already allocated; 1.02 GiB free; 6.20 GiB reserved in total by"
                " PyTorch) If reserved memory is >> allocated memory try setting"
                " max_split_size_mb to avoid fragmentation.")
        if standin.fault_fires("garbage"):
            standin.write_garbage()
        if standin.fault_fires("stderr_flood"):
            standin.flood_stderr()

        if cond.shape[1] > duration:
            cond = cond[:, :duration, :]
        cond = cond.float()
        longest = int(torch.as_tensor(duration).max())
        if cond.shape[1] < longest:  # a reference song shorter than the song: pad with silence
            cond = torch.nn.functional.pad(cond, (0, 0, 0, longest - cond.shape[1]))
        if isinstance(duration, int):
            duration = torch.full((batch_infer_num,), duration, device=self.device,
                                  dtype=torch.long)
        duration = duration.clamp(max=max_duration)
        frames = int(duration.amax())

        # Frames outside the segments to predict keep the reference latent (edit mode).
        keep = torch.zeros(frames, dtype=torch.bool, device=cond.device)
        for start, end in latent_pred_segments or [(0, frames)]:
            keep[int(start):int(end)] = True
        keep = keep[None, :, None]

        cond = cond.repeat(batch_infer_num, 1, 1)
        text = text.repeat(batch_infer_num, 1)
        style_prompt = style_prompt.repeat(batch_infer_num, 1)
        negative_style_prompt = negative_style_prompt.repeat(batch_infer_num, 1)

        def flow(t, x):
            pred = self.transformer(x=x, cond=cond, text=text, time=t, style_prompt=style_prompt,
                                    start_time=start_time, duration=song_duration)
            if cfg_strength < 1e-5:
                return pred
            null_pred = self.transformer(x=x, cond=cond, text=text, time=t, drop_audio_cond=True,
                                         drop_text=True, style_prompt=negative_style_prompt,
                                         start_time=start_time, duration=song_duration)
            return pred + (pred - null_pred) * cfg_strength

        noise = []
        for dur in duration:
            if seed is not None:
                torch.manual_seed(seed)
            noise.append(torch.randn(int(dur), self.num_channels, device=self.device))
        y0 = pad_sequence(noise, padding_value=0, batch_first=True)

        step_seconds = float(os.environ.get("DIFFRHYTHM_STANDIN_STEP_SECONDS", "0") or 0)
        t = torch.linspace(0, 1, steps, device=self.device)
        x = y0
        middle = (steps - 1) // 2
        for i in range(max(steps - 1, 1)):
            if i == middle:
                if standin.fault_fires("crash"):
                    standin.crash()
                if standin.fault_fires("hang"):
                    standin.hang()
            if i < steps - 1:
                x = x + (t[i + 1] - t[i]) * flow(t[i], x)
            if step_seconds > 0:
                time.sleep(step_seconds)

        out = torch.where(keep, x, cond[:, :frames, :])
        if standin.fault_fires("nan"):
            out = torch.full_like(out, float("nan"))
        return torch.chunk(out, batch_infer_num, dim=0), torch.stack([y0, x])

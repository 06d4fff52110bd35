"""Stand-in for upstream's DiT: a tiny module whose "flow" pulls the latent towards a melody.

The melody comes from the inputs only (lyrics tokens, style embedding), so a song is a
deterministic function of lyrics, style, seed, steps and cfg. Latent channels the stand-in VAE
reads: 0 melody pitch (semitones), 1 loudness, 2 voice (lyrics sounding), 3 bass pitch.
"""

import torch
from torch import nn
import torch.nn.functional as F

_MAJOR = torch.tensor([0, 2, 4, 5, 7, 9, 11])
FRAMES_PER_NOTE = 8


class DiT(nn.Module):
    def __init__(self, *, dim, depth=1, heads=1, dim_head=64, dropout=0.1, ff_mult=4,
                 mel_dim=64, mamba_d_state=None, text_num_embeds=256, text_dim=None,
                 conv_layers=0, long_skip_connection=False, max_frames=2048):
        super().__init__()
        self.dim = dim
        self.mel_dim = mel_dim
        self.max_frames = max_frames
        # One real parameter so .parameters() and .device behave as a real module's.
        self.rate = nn.Parameter(torch.tensor(2.0))

    def target(self, text, style_prompt, drop_text):
        """The latent this conditioning asks for: [b, frames, mel_dim]."""
        b, frames = text.shape
        tokens = torch.zeros_like(text) if drop_text else text
        style = style_prompt.float()
        root = (style[:, 0] * 1000).abs().long() % 12
        offset = (style[:, 1] * 100).abs().long()
        notes = (frames + FRAMES_PER_NOTE - 1) // FRAMES_PER_NOTE
        padded = F.pad(tokens.float(), (0, notes * FRAMES_PER_NOTE - frames))
        per_note = padded.reshape(b, notes, FRAMES_PER_NOTE).sum(-1).long()
        index = torch.arange(notes, device=text.device)
        degree = (index[None, :] * 5 + per_note + offset[:, None]) % 7
        melody = _MAJOR.to(text.device)[degree] + root[:, None]
        bass = root[:, None] + ((index[None, :] // 4) % 2) * 7
        voice = (tokens > 0).float()
        target = torch.zeros(b, frames, self.mel_dim, device=text.device)
        target[..., 0] = melody.repeat_interleave(FRAMES_PER_NOTE, dim=1)[:, :frames].float()
        target[..., 1] = 0.6 + 0.3 * voice
        target[..., 2] = voice
        target[..., 3] = bass.repeat_interleave(FRAMES_PER_NOTE, dim=1)[:, :frames].float()
        return target

    def forward(self, x, cond, text, time, drop_audio_cond=False, drop_text=False,
                drop_prompt=False, style_prompt=None, start_time=None, duration=None):
        target = self.target(text[:, : x.shape[1]], style_prompt, drop_text).to(x.dtype)
        return self.rate.to(x.dtype) * (target - x)

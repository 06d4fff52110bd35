"""Stand-in for upstream's infer/infer.py: the same flags, checks, flow and output file.

Run it like upstream, from the checkout root: python3 infer/infer.py --lrc-path x.lrc
--ref-prompt "pop" --audio-length 95 --output-dir out  →  out/output.wav (44.1 kHz stereo int16,
peak-normalised). Like upstream, the sampler runs with 32 steps and CFG 4.0 (no flags for them).
"""

import argparse
import os
import random
import time

import torch
import torchaudio

print("Current working directory:", os.getcwd())

from infer_utils import (  # noqa: E402
    decode_audio,
    get_lrc_token,
    get_negative_style_prompt,
    get_reference_latent,
    get_style_prompt,
    prepare_model,
)


def inference(cfm_model, vae_model, cond, text, duration, style_prompt, negative_style_prompt,
              start_time, pred_frames, batch_infer_num, song_duration, chunked=False):
    with torch.inference_mode():
        latents, _ = cfm_model.sample(
            cond=cond,
            text=text,
            duration=duration,
            style_prompt=style_prompt,
            max_duration=duration,
            song_duration=song_duration,
            negative_style_prompt=negative_style_prompt,
            steps=32,
            cfg_strength=4.0,
            start_time=start_time,
            latent_pred_segments=pred_frames,
            batch_infer_num=batch_infer_num,
        )
        songs = []
        for latent in latents:
            audio = decode_audio(latent.to(torch.float32).transpose(1, 2), vae_model,
                                 chunked=chunked)
            # [b, channels, n] → [channels, b * n], then peak-normalised int16.
            audio = audio.permute(1, 0, 2).reshape(audio.shape[1], -1).to(torch.float32)
            audio = audio.div(torch.max(torch.abs(audio))).clamp(-1, 1).mul(32767)
            songs.append(audio.to(torch.int16).cpu())
        return songs


def _device():
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch, "mps", None)
    if mps is not None and hasattr(mps, "is_available") and mps.is_available():
        return "mps"
    return "cpu"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lrc-path", type=str, help="lyrics of target song")
    parser.add_argument("--ref-prompt", type=str, required=False,
                        help="reference prompt as style prompt for target song")
    parser.add_argument("--ref-audio-path", type=str, required=False,
                        help="reference audio as style prompt for target song")
    parser.add_argument("--chunked", action="store_true", help="whether to use chunked decoding")
    parser.add_argument("--audio-length", type=int, default=95,
                        help="length of generated song: exactly 95, or 96 to 285 (inclusive)")
    parser.add_argument("--output-dir", type=str, default="infer/example/output",
                        help="output directory of the generated song")
    parser.add_argument("--edit", action="store_true", help="whether to open edit mode")
    parser.add_argument("--ref-song", type=str, required=False,
                        help="reference song as latent prompt for editing")
    parser.add_argument("--edit-segments", type=str, required=False,
                        help="time segments to edit (seconds), `[[start1,end1],...]`, -1 = edge")
    parser.add_argument("--batch-infer-num", type=int, default=1, required=False,
                        help="number of songs per batch")
    args = parser.parse_args()

    assert args.ref_prompt or args.ref_audio_path, \
        "either ref_prompt or ref_audio_path should be provided"
    assert not (args.ref_prompt and args.ref_audio_path), "only one of them should be provided"
    if args.edit:
        assert args.ref_song and args.edit_segments, \
            "reference song and edit segments should be provided for editing"

    device = _device()
    audio_length = args.audio_length
    if audio_length == 95:
        max_frames = 2048
    elif 95 < audio_length <= 285:
        max_frames = 6144
    else:
        raise ValueError(
            f"Invalid audio_length: {audio_length}. "
            "Supported values are exactly 95 or any value between 96 and 285 (inclusive).")

    cfm, tokenizer, muq, vae = prepare_model(max_frames, device)

    lrc = ""
    if args.lrc_path:
        with open(args.lrc_path, "r", encoding="utf-8") as f:
            lrc = f.read()
    lrc_prompt, start_time, end_frame, song_duration = get_lrc_token(
        max_frames, lrc, tokenizer, audio_length, device)

    if args.ref_audio_path:
        style_prompt = get_style_prompt(muq, args.ref_audio_path)
    else:
        style_prompt = get_style_prompt(muq, prompt=args.ref_prompt)
    negative_style_prompt = get_negative_style_prompt(device)
    latent_prompt, pred_frames = get_reference_latent(
        device, max_frames, args.edit, args.edit_segments, args.ref_song, vae)

    started = time.time()
    songs = inference(
        cfm_model=cfm,
        vae_model=vae,
        cond=latent_prompt,
        text=lrc_prompt,
        duration=end_frame,
        style_prompt=style_prompt,
        negative_style_prompt=negative_style_prompt,
        start_time=start_time,
        pred_frames=pred_frames,
        chunked=args.chunked,
        batch_infer_num=args.batch_infer_num,
        song_duration=song_duration,
    )
    print(f"inference cost {time.time() - started:.2f} seconds")

    song = random.sample(songs, 1)[0]
    os.makedirs(args.output_dir, exist_ok=True)
    torchaudio.save(os.path.join(args.output_dir, "output.wav"), song, sample_rate=44100)


if __name__ == "__main__":
    main()

"""What makes this checkout a test stand-in: fault switches and the record of every call.

Nothing here exists upstream. The upstream-shaped modules (infer/infer_utils.py, model/cfm.py)
call into this module so the tests can switch faults by environment and read back what reached
the sampler.
"""

import fcntl
import json
import os
import signal
import sys
import time

FAULTS = (
    "crash",
    "hang",
    "garbage",
    "nofile",
    "stderr_flood",
    "slow_load",
    "oom",
    "nan",
    "missing_weights",
)

_fired_here = {}  # per-process counts when no state directory is configured


def faults_switched_on():
    """DIFFRHYTHM_STANDIN_FAULT: one fault, or several separated by commas."""
    return {f.strip() for f in os.environ.get("DIFFRHYTHM_STANDIN_FAULT", "").split(",")}


def fault_fires(name):
    """True when DIFFRHYTHM_STANDIN_FAULT names this fault and its budget is not spent.

    The budget (DIFFRHYTHM_STANDIN_FAULT_TIMES, default unlimited, per fault) is counted in a
    file under
    DIFFRHYTHM_STANDIN_STATE_DIR, locked, so "fail once, then work" holds across processes.
    """
    if name not in faults_switched_on():
        return False
    times = os.environ.get("DIFFRHYTHM_STANDIN_FAULT_TIMES", "")
    if times == "":
        return True
    limit = int(times)
    state_dir = os.environ.get("DIFFRHYTHM_STANDIN_STATE_DIR", "")
    if not state_dir:
        count = _fired_here.get(name, 0)
        if count >= limit:
            return False
        _fired_here[name] = count + 1
        return True
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, f"fault-{name}.count"), "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read().strip()
        count = int(text) if text else 0
        if count >= limit:
            return False
        f.seek(0)
        f.truncate()
        f.write(str(count + 1))
        f.flush()
        os.fsync(f.fileno())
        return True


def crash():
    os.kill(os.getpid(), signal.SIGKILL)


def hang():
    while True:
        time.sleep(3600)


def write_garbage():
    # Both the raw descriptor and Python's stdout, as a chatty library would.
    os.write(1, b"this is not a protocol line {\n")
    print("loading weights... 42% <garbage on stdout>", flush=True)


def flood_stderr(total=10 * 1024 * 1024):
    line = ("stand-in stderr flood " + "x" * 100 + "\n").encode()
    written = 0
    while written < total:
        os.write(2, line)
        written += len(line)


def mode():
    return "cli" if os.path.basename(sys.argv[0]) == "infer.py" else "worker"


# What the upstream-shaped functions learned about the current song, for the record.
context = {"lrc": None, "ref_prompt": None, "ref_audio_path": None, "audio_length": None}
_pending = None


def begin_sample(device, steps, cfg_strength, batch):
    global _pending
    import torch

    _pending = {
        "mode": mode(),
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "device": str(device),
        "steps": steps,
        "cfg_strength": cfg_strength,
        "seed": torch.initial_seed(),
        "lrc": context["lrc"],
        "ref_prompt": context["ref_prompt"],
        "ref_audio_path": context["ref_audio_path"],
        "audio_length": context["audio_length"],
        "chunked": None,
        "batch": batch,
        "start": time.time(),
        "end": None,
    }


def finish_decode(chunked):
    """Writes the record of the song whose sampling began last (once, at its first decode)."""
    global _pending
    if _pending is None:
        return
    entry, _pending = _pending, None
    entry["chunked"] = bool(chunked)
    entry["end"] = time.time()
    path = os.environ.get("DIFFRHYTHM_STANDIN_RECORD", "")
    if not path:
        return
    data = (json.dumps(entry) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)

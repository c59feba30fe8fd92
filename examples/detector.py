#!/usr/bin/python3
"""A fake video-detection pipeline: realistic detection events as NDJSON on stdout.

    examples/detector.py --rate 5 --cameras 4 | evstream publish
    examples/detector.py --count 100 --rate 0 --seed 42 > detections.ndjson

One JSON object per line, one line per detection, flushed as it is written (so `evstream publish`
sends it at once):

    {"detection_id": "cam-2-000001-43b7a3a6", "camera_id": "cam-2", "camera_name": "loading-dock",
     "timestamp": "2026-11-25T19:53:48.480Z", "frame": 222,
     "objects": [{"label": "truck", "confidence": 0.917, "bbox": [704, 579, 552, 320]},
                 {"label": "person", "confidence": 0.496, "bbox": [865, 618, 98, 266]}],
     "confidence": 0.917, "description": "A person and a truck at the loading dock (cam-2).",
     "image_path": "/var/lib/detector/frames/cam-2/2026-11-25/195348_480_f222.jpg",
     "thumbnail_path": "/var/lib/detector/thumbs/cam-2/2026-11-25/195348_480_f222.jpg",
     "model": "yolo-fake-v8n"}

`bbox` is [x, y, width, height] in pixels of a 1920x1080 frame; `confidence` at the top level is
the highest object confidence. With --seed the events (all but the timestamps and the paths made
from them) are the same on every run, so `--key-field detection_id` deduplicates a re-run.

Python 3 standard library only. A closed stdout (`| head -3`) ends it quietly with status 0;
Ctrl-C with 130.
"""
import argparse
import datetime
import json
import os
import random
import signal
import sys
import time

FRAME_W, FRAME_H = 1920, 1080
MODEL = "yolo-fake-v8n"

# Each camera watches a scene, with the labels it typically sees and how often.
SCENES = [
    ("front-door", "at the front door", {"person": 8, "package": 2, "dog": 1, "bicycle": 1}),
    ("loading-dock", "at the loading dock", {"truck": 4, "person": 5, "forklift": 3, "pallet": 2}),
    ("parking-lot", "in the parking lot", {"car": 9, "person": 4, "motorcycle": 1, "bicycle": 1}),
    ("warehouse-aisle-3", "in warehouse aisle 3", {"person": 5, "forklift": 4, "pallet": 4}),
    ("lobby", "in the lobby", {"person": 9, "backpack": 3, "suitcase": 1}),
    ("back-gate", "at the back gate", {"person": 3, "car": 3, "cat": 1, "dog": 1}),
]

# Typical box sizes (width, height) in pixels for each label, before random scaling.
SIZES = {
    "person": (140, 380), "package": (90, 70), "dog": (170, 120), "cat": (90, 70),
    "bicycle": (220, 150), "truck": (620, 360), "forklift": (300, 260), "pallet": (240, 120),
    "car": (420, 210), "motorcycle": (240, 170), "backpack": (70, 90), "suitcase": (90, 120),
}

PLURALS = {"person": "people", "package": "packages", "bicycle": "bicycles", "pallet": "pallets",
           "forklift": "forklifts", "truck": "trucks", "car": "cars", "dog": "dogs", "cat": "cats",
           "motorcycle": "motorcycles", "backpack": "backpacks", "suitcase": "suitcases"}


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def non_negative_float(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Emit fake video-detection events as NDJSON on stdout.",
        epilog="example: %(prog)s --rate 5 --cameras 4 | evstream publish")
    parser.add_argument("--rate", type=non_negative_float, default=5.0,
                        help="events per second, over all cameras (0: as fast as possible; "
                             "default 5)")
    parser.add_argument("--count", type=non_negative_int, default=0,
                        help="stop after N events (default 0: run until interrupted)")
    parser.add_argument("--cameras", type=positive_int, default=4,
                        help="number of cameras, cam-1 .. cam-N (default 4)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed, for the same events on every run")
    parser.add_argument("--image-root", default="/var/lib/detector",
                        help="directory the image and thumbnail paths point into")
    return parser.parse_args(argv)


def article(word):
    return "An" if word[0] in "aeiou" else "A"


def describe(objects, scene_phrase, camera_id):
    """'A truck and 2 people at the loading dock (cam-2).'"""
    counts = {}
    for obj in objects:
        counts[obj["label"]] = counts.get(obj["label"], 0) + 1
    parts = []
    for label, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        parts.append(f"{n} {PLURALS.get(label, label + 's')}" if n > 1
                     else f"{article(label).lower()} {label}")
    if len(parts) == 1:
        phrase = parts[0]
    else:
        phrase = ", ".join(parts[:-1]) + " and " + parts[-1]
    phrase = phrase[0].upper() + phrase[1:]
    return f"{phrase} {scene_phrase} ({camera_id})."


def make_box(rng, label):
    base_w, base_h = SIZES.get(label, (150, 150))
    scale = rng.uniform(0.55, 1.5)
    w = max(8, min(FRAME_W, int(base_w * scale)))
    h = max(8, min(FRAME_H, int(base_h * scale)))
    x = rng.randint(0, FRAME_W - w)
    y = rng.randint(min(FRAME_H - h, FRAME_H // 4), FRAME_H - h)  # things stand on the ground
    return [x, y, w, h]


class Camera:
    def __init__(self, index, rng):
        name, phrase, weights = SCENES[(index - 1) % len(SCENES)]
        self.id = f"cam-{index}"
        self.name = name if index <= len(SCENES) else f"{name}-{index}"
        self.phrase = phrase
        self.labels = list(weights)
        self.weights = list(weights.values())
        self.frame = rng.randint(0, 5000)
        self.fps = 25
        self.sequence = 0


def make_event(rng, camera, now, image_root):
    camera.sequence += 1
    camera.frame += rng.randint(1, 3 * camera.fps)
    n = rng.choices([1, 2, 3, 4, 5], weights=[40, 30, 15, 10, 5])[0]
    objects = []
    for _ in range(n):
        label = rng.choices(camera.labels, weights=camera.weights)[0]
        confidence = round(min(0.99, max(0.35, rng.betavariate(6, 1.6))), 3)
        objects.append({"label": label, "confidence": confidence, "bbox": make_box(rng, label)})
    objects.sort(key=lambda obj: -obj["confidence"])
    stamp = now.strftime("%H%M%S_") + f"{now.microsecond // 1000:03d}"
    day = now.strftime("%Y-%m-%d")
    file_name = f"{stamp}_f{camera.frame}.jpg"
    return {
        "detection_id": f"{camera.id}-{camera.sequence:06d}-{rng.getrandbits(32):08x}",
        "camera_id": camera.id,
        "camera_name": camera.name,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "frame": camera.frame,
        "objects": objects,
        "confidence": objects[0]["confidence"],
        "description": describe(objects, camera.phrase, camera.id),
        "image_path": f"{image_root}/frames/{camera.id}/{day}/{file_name}",
        "thumbnail_path": f"{image_root}/thumbs/{camera.id}/{day}/{file_name}",
        "model": MODEL,
    }


def quiet_exit(status):
    """Exits without Python complaining about a stdout that can no longer be flushed."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    os._exit(status)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    rng = random.Random(args.seed)
    cameras = [Camera(i, rng) for i in range(1, args.cameras + 1)]
    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    start = time.monotonic()
    out = sys.stdout
    emitted = 0
    try:
        while args.count == 0 or emitted < args.count:
            if interval:
                # Each event is due at its offset from the start, so a slow write does not push
                # every later event back.
                delay = start + emitted * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            camera = rng.choice(cameras)
            now = datetime.datetime.now(datetime.timezone.utc)
            event = make_event(rng, camera, now, args.image_root.rstrip("/"))
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
            out.flush()
            emitted += 1
    except BrokenPipeError:
        quiet_exit(0)
    except KeyboardInterrupt:
        quiet_exit(130)
    return 0


if __name__ == "__main__":
    # Ctrl-C ends it even when started in the background of a script (where SIGINT is ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())

"""Benchmark photos for bench/processor.py: real wallpapers from Debian, cut to 1080p and 2160p."""

import subprocess
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "plasma-workspace-wallpapers"
# Photographs (not renders) in that package, best first.
PREFERRED = ("Altai", "MilkyWay", "Volna", "Kay")
SIZES = {"1080p": (1920, 1080), "2160p": (3840, 2160)}


def _fetch_wallpapers(cache: Path) -> Path | None:
    """Download and unpack the wallpaper package into ``cache``; None when that fails."""
    unpacked = cache / "wallpapers"
    if (unpacked / "usr").exists():
        return unpacked
    try:
        debs = list(cache.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            subprocess.run(
                ["apt-get", "download", PACKAGE],
                cwd=cache,
                check=True,
                timeout=300,
                capture_output=True,
            )
            debs = list(cache.glob(f"{PACKAGE}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True, timeout=300)
    except (subprocess.SubprocessError, OSError, IndexError):
        return None
    return unpacked


def _pick(unpacked: Path) -> Path | None:
    """Return the largest image of the first preferred wallpaper found."""
    for name in PREFERRED:
        images = sorted((unpacked / "usr/share/wallpapers" / name).glob("contents/images/*.*"))
        sized = [(Image.open(p).size[0], p) for p in images if p.suffix in (".jpg", ".png")]
        if sized:
            return max(sized)[1]
    return None


def _cut(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Crop the centred region of the target aspect ratio and resize it to ``size``."""
    height, width = pixels.shape[:2]
    target_w, target_h = size
    if width * target_h > height * target_w:
        crop_w, crop_h = height * target_w // target_h, height
    else:
        crop_w, crop_h = width, width * target_h // target_w
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    region = pixels[top : top + crop_h, left : left + crop_w]
    shrinking = crop_w >= target_w
    return cv2.resize(region, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def cut_photos(cache: Path) -> tuple[dict[str, Path], str]:
    """Return {label: JPEG path} for every size, and a sentence saying where they came from."""
    photos = cache / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    unpacked = _fetch_wallpapers(cache)
    original = _pick(unpacked) if unpacked else None
    if original is not None and unpacked is not None:
        source = f"{original.relative_to(unpacked)} from Debian's {PACKAGE} (cropped + resized)"
    else:
        original = ROOT / "samples" / "hubble_deep_field.jpg"
        source = f"FALLBACK: {PACKAGE} unavailable; samples/{original.name} upscaled"
    pixels = np.asarray(Image.open(original).convert("RGB"))
    paths = {}
    for label, size in SIZES.items():
        path = photos / f"photo-{label}.jpg"
        if not path.exists():
            Image.fromarray(_cut(pixels, size)).save(path, "JPEG", quality=90)
        paths[label] = path
    return paths, source

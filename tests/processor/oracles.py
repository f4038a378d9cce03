"""Plain numpy/scipy reference implementations: the oracles the fast operations must match.

Each oracle follows the operation's docstring literally, in float64 where that
is simplest, with no OpenCV. They are slow and only meant for small test images.
"""

import math

import numpy as np
import scipy.fft
import scipy.ndimage as ndi

BT601 = np.array([0.299, 0.587, 0.114])


def split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (colour, alpha) with alpha None for L and RGB."""
    if image.ndim == 3 and image.shape[2] in (2, 4):
        return image[:, :, :-1], image[:, :, -1]
    return image, None


def join_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Append alpha to colour (HxW or HxWxC), if any."""
    if alpha is None:
        return colour
    planes = colour if colour.ndim == 3 else colour[:, :, np.newaxis]
    return np.dstack([planes, alpha])


def squeeze(colour: np.ndarray) -> np.ndarray:
    """Turn HxWx1 into HxW."""
    return colour[:, :, 0] if colour.ndim == 3 and colour.shape[2] == 1 else colour


def to_u8(values: np.ndarray) -> np.ndarray:
    """Round half to even and saturate to uint8."""
    out: np.ndarray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return out


def half_up(values: np.ndarray) -> np.ndarray:
    """Round half up and saturate to uint8."""
    return np.clip(np.floor(values + 0.5), 0, 255).astype(np.uint8)


def luma(colour: np.ndarray) -> np.ndarray:
    """BT.601 luma of RGB (or the grey plane itself), as float64."""
    colour = squeeze(colour)
    if colour.ndim == 2:
        return colour.astype(np.float64)
    weighted: np.ndarray = colour.astype(np.float64) @ BT601
    return weighted


def grayscale(image: np.ndarray) -> np.ndarray:
    colour, alpha = split_alpha(image)
    return join_alpha(to_u8(luma(colour)), alpha)


def invert(image: np.ndarray) -> np.ndarray:
    colour, alpha = split_alpha(image)
    return join_alpha(squeeze(255 - colour), alpha)


def brightness(image: np.ndarray, offset: int) -> np.ndarray:
    colour, alpha = split_alpha(image)
    return join_alpha(squeeze(np.clip(colour.astype(int) + offset, 0, 255).astype(np.uint8)), alpha)


def contrast(image: np.ndarray, factor: float) -> np.ndarray:
    colour, alpha = split_alpha(image)
    return join_alpha(squeeze(half_up(128 + factor * (colour.astype(float) - 128))), alpha)


def threshold(image: np.ndarray, level: int) -> np.ndarray:
    colour, alpha = split_alpha(image)
    grey = to_u8(luma(colour))
    return join_alpha(np.where(grey >= level, 255, 0).astype(np.uint8), alpha)


def equalize_grey(grey: np.ndarray) -> np.ndarray:
    """Histogram equalisation as documented: darkest level present to 0, brightest to 255."""
    hist = np.bincount(grey.ravel(), minlength=256)
    cdf = np.cumsum(hist)
    lowest = int(np.flatnonzero(hist)[0])
    if hist[lowest] == grey.size:
        return grey.copy()
    table = to_u8(255 * (cdf - hist[lowest]) / (grey.size - hist[lowest]))
    table[:lowest] = 0
    mapped: np.ndarray = table[grey]
    return mapped


def equalize(image: np.ndarray) -> np.ndarray:
    colour, alpha = split_alpha(image)
    colour = squeeze(colour)
    if colour.ndim == 2:
        return join_alpha(equalize_grey(colour), alpha)
    rgb = colour.astype(np.float64)
    y = to_u8(rgb @ BT601)
    cr = (rgb[:, :, 0] - y) * 0.713 + 128
    cb = (rgb[:, :, 2] - y) * 0.564 + 128
    cr, cb = to_u8(cr).astype(float), to_u8(cb).astype(float)
    y2 = equalize_grey(y).astype(float)
    red = y2 + 1.403 * (cr - 128)
    green = y2 - 0.714 * (cr - 128) - 0.344 * (cb - 128)
    blue = y2 + 1.773 * (cb - 128)
    return join_alpha(to_u8(np.dstack([red, green, blue])), alpha)


def _per_channel(image: np.ndarray, func: object) -> np.ndarray:
    """Apply ``func`` (2-D float in, 2-D float out) to every channel."""
    assert callable(func)
    if image.ndim == 2:
        result: np.ndarray = func(image.astype(np.float64))
        return result
    return np.dstack([func(image[:, :, c].astype(np.float64)) for c in range(image.shape[2])])


def opencv_radius(sigma: float) -> int:
    """Half the kernel size OpenCV picks for uint8 with ksize=(0, 0): round(6 sigma + 1) | 1."""
    return (round(sigma * 3 * 2 + 1) | 1) // 2


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur in float64, mirrored border without repeating the edge (scipy 'mirror')."""
    radius = opencv_radius(sigma)
    return to_u8(
        _per_channel(
            image,
            lambda p: ndi.gaussian_filter(p, sigma, mode="mirror", truncate=radius / sigma),
        )
    )


def frequency_low_pass(image: np.ndarray, method: str, cutoff: float, order: int = 2) -> np.ndarray:
    """Radial frequency-domain low-pass with numpy.fft, mirrored padding as documented."""
    height, width = image.shape[:2]
    pad_y = min(height - 1, max(8, height // 8))
    pad_x = min(width - 1, max(8, width // 8))

    full_h = scipy.fft.next_fast_len(height + 2 * pad_y, real=True)
    full_w = scipy.fft.next_fast_len(width + 2 * pad_x, real=True)

    def plane(p: np.ndarray) -> np.ndarray:
        padded = np.pad(
            p, ((pad_y, full_h - height - pad_y), (pad_x, full_w - width - pad_x)), mode="reflect"
        )
        fy = np.fft.fftfreq(padded.shape[0])[:, np.newaxis] / 0.5
        fx = np.fft.fftfreq(padded.shape[1])[np.newaxis, :] / 0.5
        radius = np.hypot(fy, fx)
        if method == "ideal":
            gain = (radius <= cutoff).astype(float)
        else:
            gain = 1 / (1 + (radius / cutoff) ** (2 * order))
        filtered = np.real(np.fft.ifft2(np.fft.fft2(padded) * gain))
        return filtered[pad_y : pad_y + height, pad_x : pad_x + width]

    return to_u8(_per_channel(image, plane))


def sharpen(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    colour, alpha = split_alpha(image)
    colour = squeeze(colour)
    blurred = gaussian(colour, sigma).astype(float)
    values = colour.astype(float)
    return join_alpha(to_u8(values + amount * (values - blurred)), alpha)


def median(image: np.ndarray, size: int) -> np.ndarray:
    return _per_channel(image, lambda p: ndi.median_filter(p, size, mode="nearest")).astype(
        np.uint8
    )


def sobel(colour: np.ndarray, axis: int) -> np.ndarray:
    """3x3 Sobel derivative along ``axis`` (1 = x, 0 = y), edges replicated, as int."""
    return _per_channel(colour, lambda p: ndi.sobel(p, axis=axis, mode="nearest")).astype(int)


def gradient(image: np.ndarray, axis: int, mode: str) -> np.ndarray:
    colour, alpha = split_alpha(image)
    g = sobel(squeeze(colour), axis)
    mapped = (g + 1028) // 8 if mode == "signed" else (np.abs(g) + 2) // 4
    return join_alpha(np.clip(mapped, 0, 255).astype(np.uint8), alpha)


def edges(image: np.ndarray) -> np.ndarray:
    colour, alpha = split_alpha(image)
    colour = squeeze(colour)
    return join_alpha(to_u8(np.hypot(sobel(colour, 1), sobel(colour, 0)) / 4), alpha)


def flip(image: np.ndarray, axis: str) -> np.ndarray:
    axes = {"horizontal": (1,), "vertical": (0,), "both": (0, 1)}[axis]
    return np.flip(image, axes)


def crop(image: np.ndarray, x: int, y: int, width: int, height: int) -> np.ndarray:
    return image[y : y + height, x : x + width]


def rotate(
    image: np.ndarray, degrees: float, size: tuple[int, int], fill: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear rotation about the centre onto a ``size`` (width, height) canvas.

    Returns the image and a mask of output pixels whose source lies at least one
    pixel inside the input, where no fill colour is blended in.
    """
    height, width = image.shape[:2]
    out_w, out_h = size
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    # Output (row, col) offsets from the centre map back to input offsets.
    matrix = np.array([[c, s], [-s, c]])
    centre_in = np.array([(height - 1) / 2, (width - 1) / 2])
    centre_out = np.array([(out_h - 1) / 2, (out_w - 1) / 2])
    offset = centre_in - matrix @ centre_out
    planes = image if image.ndim == 3 else image[:, :, np.newaxis]
    out = np.dstack(
        [
            ndi.affine_transform(
                planes[:, :, ch].astype(np.float64),
                matrix,
                offset=offset,
                output_shape=(out_h, out_w),
                order=1,
                mode="constant",
                cval=fill[ch],
            )
            for ch in range(planes.shape[2])
        ]
    )
    rows, cols = np.mgrid[0:out_h, 0:out_w]
    src_r = matrix[0, 0] * rows + matrix[0, 1] * cols + offset[0]
    src_c = matrix[1, 0] * rows + matrix[1, 1] * cols + offset[1]
    inside = (src_r >= 1) & (src_r <= height - 2) & (src_c >= 1) & (src_c <= width - 2)
    return squeeze(to_u8(out)), inside


def _area_weights(source: int, target: int) -> np.ndarray:
    """Matrix (target x source) of the overlap of each output cell with each input pixel."""
    scale = source / target
    weights = np.zeros((target, source))
    for i in range(target):
        start, end = i * scale, (i + 1) * scale
        for j in range(math.floor(start), min(source, math.ceil(end))):
            weights[i, j] = min(end, j + 1) - max(start, j)
    return weights / scale


def resize_area(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Shrink by exact area averaging."""
    wy = _area_weights(image.shape[0], height)
    wx = _area_weights(image.shape[1], width)
    return to_u8(_per_channel(image, lambda p: wy @ p @ wx.T))


def _linear_weights(source: int, target: int) -> np.ndarray:
    """Bilinear interpolation matrix with half-pixel centres and replicated edges."""
    weights = np.zeros((target, source))
    for i in range(target):
        x = min(max((i + 0.5) * source / target - 0.5, 0), source - 1)
        left = min(math.floor(x), source - 1)
        frac = x - left
        weights[i, left] += 1 - frac
        if frac:
            weights[i, left + 1] += frac
    return weights


def resize_linear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Enlarge by bilinear interpolation."""
    wy = _linear_weights(image.shape[0], height)
    wx = _linear_weights(image.shape[1], width)
    return to_u8(_per_channel(image, lambda p: wy @ p @ wx.T))

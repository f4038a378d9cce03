"""A histogram of an image's levels drawn as SVG: one polyline per channel, scaled to the peak."""

from html import escape

from gateway.clients import Histogram

WIDTH, HEIGHT = 320, 160
# The plot's box inside the picture; the margins hold the axes' labels.
LEFT, RIGHT, TOP, BOTTOM = 34, 304, 10, 136
LEVELS = 256
# Light enough to read on the page's dark panes, distinct for red, green, blue and grey.
COLOURS = {"r": "#ff6b6b", "g": "#5ad17a", "b": "#5aa2ff", "l": "#d8d8d8"}
NAMES = {"r": "red", "g": "green", "b": "blue", "l": "grey"}
AXIS, LABEL = "#6b717b", "#9aa0a6"


def _points(counts: list[int], peak: int) -> str:
    """The polyline's points: level along x, count over the peak along y."""
    step = (RIGHT - LEFT) / (LEVELS - 1)
    height = BOTTOM - TOP
    return " ".join(
        f"{LEFT + level * step:.1f},{BOTTOM - count / peak * height:.1f}"
        for level, count in enumerate(counts)
    )


def channel_names(histogram: Histogram) -> str:
    """The channels in words: "red, green and blue" or "grey"."""
    names = [NAMES.get(channel, channel) for channel in histogram.channels]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def histogram_svg(histogram: Histogram, title: str) -> str:
    """Draw the counts of each channel as a polyline, all scaled to the largest count."""
    peak = max((max(counts, default=0) for counts in histogram.counts), default=0) or 1
    label = f"{title}: {channel_names(histogram)} levels, 0 to 255"
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(label)}" '
        'font-family="system-ui, sans-serif" font-size="10">',
        f"<title>{escape(label)}</title>",
        f"<desc>{histogram.width} × {histogram.height} pixels; the tallest bin holds {peak:,}."
        "</desc>",
        f'<g stroke="{AXIS}" stroke-width="1" fill="none">',
        f'<polyline points="{LEFT},{TOP} {LEFT},{BOTTOM} {RIGHT},{BOTTOM}"/>',
        *(
            f'<line x1="{x:.1f}" y1="{BOTTOM}" x2="{x:.1f}" y2="{BOTTOM + 4}"/>'
            for x in (LEFT + (RIGHT - LEFT) * level / (LEVELS - 1) for level in (0, 128, 255))
        ),
        "</g>",
        f'<g fill="{LABEL}">',
        f'<text x="{LEFT}" y="{BOTTOM + 15}" text-anchor="middle">0</text>',
        f'<text x="{(LEFT + RIGHT) / 2:.1f}" y="{BOTTOM + 15}" text-anchor="middle">128</text>',
        f'<text x="{RIGHT}" y="{BOTTOM + 15}" text-anchor="middle">255</text>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{_short(peak)}</text>',
        f'<text x="{LEFT - 4}" y="{BOTTOM}" text-anchor="end">0</text>',
        "</g>",
    ]
    for channel, counts in zip(histogram.channels, histogram.counts, strict=True):
        colour = COLOURS.get(channel, LABEL)
        lines.append(
            f'<polyline class="channel-{escape(channel)}" fill="none" stroke="{colour}" '
            f'stroke-width="1.2" stroke-linejoin="round" points="{_points(counts, peak)}"/>'
        )
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def _short(count: int) -> str:
    """A count as an axis label: 950, 12k, 3.4M."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 10_000:
        return f"{count // 1000}k"
    return str(count)

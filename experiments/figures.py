"""What the experiments' scripts share: a markdown table written and shown,
and the frame of a plain SVG chart (axes, labels, white background).

Scripts import it with the experiments folder on sys.path:
    sys.path.insert(0, EXPERIMENTS_DIR); import figures
Standard library only.
"""


def write_table(path, lines):
    """Writes the markdown `lines` to `path` and prints them."""
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def svg_frame(w, h, pad, xlabel, ylabel):
    """The opening elements of a w x h chart whose plot area is inset by pad."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
            f'<rect width="{w}" height="{h}" fill="white"/>',
            f'<line x1="{pad}" y1="{h-pad}" x2="{w-pad}" y2="{h-pad}" stroke="black"/>',
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h-pad}" stroke="black"/>',
            f'<text x="{w/2}" y="{h-12}" text-anchor="middle">{xlabel}</text>',
            f'<text x="14" y="{h/2}" transform="rotate(-90 14 {h/2})" text-anchor="middle">{ylabel}</text>']


def write_svg(path, elements):
    """Closes the chart and writes it."""
    with open(path, "w") as f:
        f.write("\n".join(elements + ["</svg>"]) + "\n")

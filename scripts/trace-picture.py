#!/usr/bin/env python3
"""Draws one trace as an SVG waterfall: each span a bar on a shared time axis, children under
their parent, coloured by kind.

    PUPMATCH_TRACE_PICTURES=/tmp/traces scripts/test.sh -E 'test(/a_message_delivered_by_another/)'
    scripts/trace-picture.py /tmp/traces/message-across-instances.json > docs/images/trace.svg

The spans come from the test suite's OTLP receiver (`tests/api/helpers/otlp.rs`), which saves
the trace it received when `PUPMATCH_TRACE_PICTURES` names a directory.
"""
import html
import json
import sys

KIND = {1: ("internal", "#8c8c8c"), 2: ("server", "#3b6fd8"), 3: ("client", "#2f9e62"),
        4: ("producer", "#9b59b6"), 5: ("consumer", "#d9822b")}
ROW, LABEL, BARS, PAD = 22, 330, 560, 12


def ordered(spans):
    """Parents before children, siblings by start time."""
    ids = {s["spanId"] for s in spans}
    children = {}
    for s in spans:
        parent = s["parentSpanId"] if s["parentSpanId"] in ids else None
        children.setdefault(parent, []).append(s)
    out = []

    def walk(parent, depth):
        for s in sorted(children.get(parent, []), key=lambda s: s["startNs"]):
            out.append((depth, s))
            walk(s["spanId"], depth + 1)

    walk(None, 0)
    return out


def main(path):
    spans = json.load(open(path))
    rows = ordered(spans)
    start = min(s["startNs"] for s in spans)
    end = max(s["endNs"] for s in spans)
    total = max(end - start, 1)
    height = PAD * 2 + ROW * (len(rows) + 3)
    width = LABEL + BARS + PAD * 2
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{PAD}" y="{PAD + 14}" font-weight="bold">One trace, {len(rows)} spans, '
           f'{total / 1e6:.1f} ms</text>']
    for ms in range(0, int(total / 1e6) + 1, max(1, int(total / 1e6 / 8) or 1)):
        x = LABEL + PAD + BARS * ms * 1e6 / total
        out.append(f'<line x1="{x:.1f}" y1="{PAD + ROW}" x2="{x:.1f}" y2="{height - PAD}" '
                   f'stroke="#eee"/><text x="{x + 2:.1f}" y="{PAD + ROW + 12}" fill="#999" '
                   f'font-size="10">{ms} ms</text>')
    for i, (depth, s) in enumerate(rows):
        y = PAD + ROW * (i + 2)
        kind, colour = KIND.get(s["kind"], ("?", "#555"))
        x = LABEL + PAD + BARS * (s["startNs"] - start) / total
        w = max(BARS * (s["endNs"] - s["startNs"]) / total, 1.5)
        took = (s["endNs"] - s["startNs"]) / 1e6
        name = html.escape(s["name"])
        out.append(f'<text x="{PAD + depth * 14}" y="{y + 14}">{name}</text>')
        out.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{ROW - 8}" '
                   f'fill="{colour}"><title>{name} ({kind}) {took:.2f} ms</title></rect>')
        # The duration after the bar, or before it when the bar ends near the right edge.
        tx, anchor = (x + w + 4, "start") if x + w < width - 70 else (x - 4, "end")
        out.append(f'<text x="{tx:.1f}" y="{y + 14}" fill="#555" font-size="10" '
                   f'text-anchor="{anchor}">{took:.2f} ms</text>')
    legend_x = PAD
    for kind, colour in KIND.values():
        out.append(f'<rect x="{legend_x}" y="{height - PAD - 8}" width="10" height="10" '
                   f'fill="{colour}"/><text x="{legend_x + 14}" y="{height - PAD + 1}" '
                   f'font-size="10">{kind}</text>')
        legend_x += 80
    out.append('</svg>')
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""//bench:report: runs both harnesses over every backend and writes a
Markdown report with tables and SVG plots, plus the raw JSON.

    bazel run //bench:report                 # ~5 minutes on 2 cores
    bazel run //bench:report -- --quick      # under a minute (CI)
    bazel run //bench:report -- --out=/tmp/r # default: results/ in the workspace

Output (in --out):
  report.md                   the report: tables, goals, recommendations
  *.svg                       plots referenced by report.md
  latency.json                Google Benchmark output of //bench:latency
  fragmentation.jsonl         //bench:fragmentation --json, one line per
                              trace and backend
  fragmentation_series.json   fragmentation over time, for the plots
  summary.json                the goals and the measured figures behind them
  *.log                       the harnesses' stderr

Every latency figure is compared with a baseline measured in the same run
(the first-fit yardstick, mmap, a raw socket ping-pong), because these
machines are noisy; the ratios come from the harness counters.
"""

import argparse
import glob
import json
import math
import os
import re
import subprocess
import sys
import time
from xml.sax.saxutils import escape

YARDSTICK = 'firstfit'
PALETTE = ['#7f7f7f', '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b',
           '#e377c2', '#17becf', '#bcbd22']
# Backends keep their colour in every plot: the yardstick grey, the others
# in the order they first appear.
_COLORS = {YARDSTICK: PALETTE[0]}


def color_of(name, index, by_name=True):
    """A backend's fixed colour (by_name), or a colour by position for other
    series (percentiles)."""
    if not by_name:
        return PALETTE[(index + 1) % len(PALETTE)]
    if name not in _COLORS:
        _COLORS[name] = PALETTE[len(_COLORS) % len(PALETTE)]
    return _COLORS[name]


# ----------------------------------------------------------------------------
# Locating the harnesses

def runfiles_roots():
    roots = []
    for var in ('RUNFILES_DIR', 'TEST_SRCDIR'):
        if os.environ.get(var):
            roots.append(os.environ[var])
    here = os.path.abspath(__file__)
    roots.append(here + '.runfiles')
    # Inside the runfiles tree: .../<name>.runfiles/l4re_ma/bench/report.py
    parts = here.split(os.sep)
    for i in range(len(parts) - 1, 0, -1):
        if parts[i].endswith('.runfiles'):
            roots.append(os.sep.join(parts[:i + 1]))
            break
    # Plain checkout: bazel-bin next to the workspace.
    workspace = os.path.dirname(os.path.dirname(here))
    roots.append(os.path.join(workspace, 'bazel-bin', 'bench', 'report.runfiles'))
    return roots


def find_runfile(rel):
    for root in runfiles_roots():
        path = os.path.join(root, 'l4re_ma', rel)
        if os.path.exists(path):
            return path
    return None


# ----------------------------------------------------------------------------
# Formatting

def fmt_ns(ns):
    if ns is None or (isinstance(ns, float) and math.isnan(ns)):
        return '–'
    if ns >= 1e6:
        return '%.2f ms' % (ns / 1e6)
    if ns >= 1e4:
        return '%.0f µs' % (ns / 1e3)
    if ns >= 1e3:
        return '%.1f µs' % (ns / 1e3)
    if ns >= 100:
        return '%.0f ns' % ns
    return '%.1f ns' % ns


def fmt_ratio(x):
    if x is None:
        return ''
    if x >= 100:
        return '%.0f×' % x
    if x >= 10:
        return '%.1f×' % x
    if x >= 0.1:
        return '%.2f×' % x
    return '%.3f×' % x


def fmt_bytes(b):
    if b is None:
        return '–'
    for unit, div in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if b >= div:
            return '%.1f %s' % (b / div, unit)
    return '%d B' % b


def md_table(header, rows):
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(['---'] * len(header)) + '|']
    for r in rows:
        out.append('| ' + ' | '.join(str(c) for c in r) + ' |')
    return '\n'.join(out) + '\n'


# ----------------------------------------------------------------------------
# SVG plots (hand-written: no plotting library on these machines)

class Svg:
    def __init__(self, width, height, title):
        self.w, self.h = width, height
        self.items = []
        self.text(width / 2, 20, title, size=14, anchor='middle', weight='bold')

    def line(self, x1, y1, x2, y2, color='#000', width=1, dash=None):
        d = ' stroke-dasharray="%s"' % dash if dash else ''
        self.items.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" '
                          'stroke-width="%s"%s/>' % (x1, y1, x2, y2, color, width, d))

    def rect(self, x, y, w, h, color, title=None):
        t = '<title>%s</title>' % escape(title) if title else ''
        self.items.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">%s</rect>'
                          % (x, y, max(w, 0), max(h, 0), color, t))

    def polyline(self, points, color, width=1.5, fill=None):
        pts = ' '.join('%.1f,%.1f' % p for p in points)
        self.items.append('<polyline points="%s" fill="%s" stroke="%s" stroke-width="%s"/>'
                          % (pts, fill or 'none', color if not fill else 'none', width))

    def circle(self, x, y, r, color, title=None):
        t = '<title>%s</title>' % escape(title) if title else ''
        self.items.append('<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s">%s</circle>'
                          % (x, y, r, color, t))

    def text(self, x, y, s, size=11, anchor='start', weight='normal', rotate=None, color='#000'):
        tr = ' transform="rotate(%d %.1f %.1f)"' % (rotate, x, y) if rotate else ''
        self.items.append('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" '
                          'font-weight="%s" fill="%s"%s>%s</text>'
                          % (x, y, size, anchor, weight, color, tr, escape(str(s))))

    def legend(self, x, y, names, by_name=True):
        for i, n in enumerate(names):
            self.rect(x, y + i * 16 - 9, 10, 10, color_of(n, i, by_name))
            self.text(x + 14, y + i * 16, n)

    def render(self):
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                'viewBox="0 0 %d %d" font-family="sans-serif">\n'
                '<rect width="100%%" height="100%%" fill="white"/>\n%s\n</svg>\n'
                % (self.w, self.h, self.w, self.h, '\n'.join(self.items)))


class Axis:
    """Maps values to pixels, linear or log10."""

    def __init__(self, lo, hi, p0, p1, log=False):
        if log:
            lo = max(lo, 1e-12)
            hi = max(hi, lo * 10)
            self.lo, self.hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        else:
            self.lo, self.hi = lo, hi if hi > lo else lo + 1
        self.p0, self.p1, self.log = p0, p1, log

    def __call__(self, v):
        if self.log:
            v = math.log10(max(v, 10 ** self.lo))
        return self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)

    def ticks(self):
        if self.log:
            return [10 ** e for e in range(int(self.lo), int(self.hi) + 1)]
        # 1, 2 or 5 times a power of ten, about five ticks.
        raw = (self.hi - self.lo) / 5
        mag = 10 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
        first = math.ceil(self.lo / step) * step
        out = []
        v = first
        while v <= self.hi + step * 1e-9:
            out.append(v)
            v += step
        return out


def y_axis(svg, axis, x, label, fmt):
    for t in axis.ticks():
        y = axis(t)
        svg.line(x - 4, y, x, y)
        svg.line(x, y, svg.w - 150, y, color='#ddd')
        svg.text(x - 6, y + 4, fmt(t), size=10, anchor='end')
    svg.text(16, (axis.p0 + axis.p1) / 2, label, size=11, anchor='middle', rotate=-90)


def grouped_bars(title, groups, series, values, ylabel, log=True, fmt=fmt_ns, by_name=True):
    """values[(group, series)] -> number; one bar per series in each group;
    by_name: the series are backends (fixed colours)."""
    width = max(640, 110 + len(groups) * (len(series) * 12 + 24) + 160)
    svg = Svg(width, 400, title)
    left, top, bottom = 110, 40, 300
    vals = [v for v in values.values() if v and v > 0]
    if not vals:
        return svg.render()
    axis = Axis(min(vals), max(vals), bottom, top, log=log)
    y_axis(svg, axis, left, ylabel, fmt)
    gw = len(series) * 12 + 24
    for gi, g in enumerate(groups):
        gx = left + 12 + gi * gw
        for si, s in enumerate(series):
            v = values.get((g, s))
            if not v or v <= 0:
                continue
            y = axis(v)
            svg.rect(gx + si * 12, y, 10, bottom - y, color_of(s, si, by_name),
                     '%s, %s: %s' % (s, g, fmt(v)))
        svg.text(gx + gw / 2 - 12, bottom + 12, g, size=10, anchor='end', rotate=-35)
    svg.line(left, bottom, left + len(groups) * gw + 12, bottom)
    svg.line(left, top, left, bottom)
    svg.legend(width - 140, top + 10, series, by_name)
    return svg.render()


def line_chart(title, series, xlabel, ylabel, xlog=False, ylog=False, xfmt=None, yfmt=fmt_ns,
               background=None, ylo=None, yhi=None, xticks=None):
    """series: [(name, [(x, y), ...])]; background: optional (label, [(x, v)])
    drawn as a grey area scaled to the plot height; xticks: where to put
    x ticks (default: the axis's own)."""
    xfmt = xfmt or (lambda v: '%g' % v)
    svg = Svg(760, 380, title)
    left, right, top, bottom = 70, 600, 40, 320
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts if (y > 0 or not ylog)]
    if not xs or not ys:
        return svg.render()
    xa = Axis(min(xs), max(xs), left, right, log=xlog) if not xticks else \
        Axis(min(xticks), max(xticks), left, right, log=xlog)
    if xticks and xlog:
        xa.lo, xa.hi = math.log10(min(xticks)), math.log10(max(xticks))
    ya = Axis(min(ys) if ylo is None else ylo, max(ys) if yhi is None else yhi, bottom, top,
              log=ylog)
    if background and background[1]:
        bmax = max(v for _, v in background[1]) or 1
        pts = [(xa(x), bottom - (v / bmax) * (bottom - top)) for x, v in background[1]]
        svg.polyline([(pts[0][0], bottom)] + pts + [(pts[-1][0], bottom)], '#eee', fill='#eee')
        svg.text(right - 4, top + 12, background[0], size=10, anchor='end', color='#999')
    y_axis(svg, ya, left, ylabel, yfmt)
    for t in xticks or xa.ticks():
        x = xa(t)
        svg.line(x, bottom, x, bottom + 4)
        svg.text(x, bottom + 16, xfmt(t), size=10, anchor='middle')
    svg.text((left + right) / 2, bottom + 34, xlabel, anchor='middle')
    svg.line(left, bottom, right, bottom)
    svg.line(left, top, left, bottom)
    for i, (name, pts) in enumerate(series):
        color = color_of(name, i)
        p = [(xa(x), ya(y)) for x, y in pts if (y > 0 or not ylog)]
        if len(p) > 1:
            svg.polyline(p, color)
        if len(p) <= 12:
            for (x, y), (vx, vy) in zip(p, pts):
                svg.circle(x, y, 3, color, '%s: %s' % (name, yfmt(vy)))
    svg.legend(right + 20, top + 10, [n for n, _ in series])
    return svg.render()


# ----------------------------------------------------------------------------
# Running the harnesses

def run(cmd, log_path, stdout_path=None):
    """Runs cmd. Its stdout goes to stdout_path, or else, with its stderr,
    to the log and (as progress) to our stderr."""
    print('report: running %s' % ' '.join(cmd), file=sys.stderr, flush=True)
    start = time.time()
    with open(log_path, 'w') as log:
        if stdout_path:
            out = open(stdout_path, 'w')
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
            stream = proc.stderr
        else:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
            stream = proc.stdout
        for line in stream:
            log.write(line)
            sys.stderr.write('  ' + line)
            sys.stderr.flush()
        proc.wait()
        if stdout_path:
            out.close()
    elapsed = time.time() - start
    if proc.returncode != 0:
        raise SystemExit('report: %s failed with status %d (see %s)'
                         % (os.path.basename(cmd[0]), proc.returncode, log_path))
    return elapsed


# ----------------------------------------------------------------------------
# Latency results

ITER = re.compile(r'/iterations:\d+|/repeats:\d+')


def load_latency(path):
    """name (without /iterations:N) -> benchmark record; the median
    aggregate when repetitions ran."""
    with open(path) as f:
        data = json.load(f)
    plain, medians = {}, {}
    for b in data.get('benchmarks', []):
        if b.get('error_occurred'):
            name = ITER.sub('', b.get('run_name', b['name']))
            plain.setdefault(name, {'error': b.get('error_message', 'error')})
            continue
        if b.get('run_type') == 'aggregate':
            if b.get('aggregate_name') == 'median':
                medians[ITER.sub('', b['run_name'])] = b
        else:
            plain[ITER.sub('', b.get('run_name', b['name']))] = b
    plain.update(medians)
    return data.get('context', {}), plain


def cell(bench, key='ns', ratio=None):
    if bench is None:
        return '–'
    if 'error' in bench:
        return 'error: ' + bench['error']
    v = bench.get(key)
    s = fmt_ns(v)
    if ratio and bench.get(ratio) is not None:
        s += ' (%s)' % fmt_ratio(bench[ratio])
    return s


# ----------------------------------------------------------------------------
# The report

class Report:
    def __init__(self, out, lat_ctx, lat, frag, series, meta):
        self.out, self.ctx, self.lat, self.frag, self.series = out, lat_ctx, lat, frag, series
        self.meta = meta
        names = sorted({n.split('/')[-1] for n in lat if n.startswith('L1_Empty/')})
        self.backends = ([YARDSTICK] if YARDSTICK in names else []) + \
            [n for n in names if n != YARDSTICK]
        self.ours = [b for b in self.backends if b != YARDSTICK]
        if not self.ours:
            self.ours = sorted({r['backend'] for r in frag if r['backend'] != YARDSTICK})
        self.svgs = []
        self.goals = []

    def b(self, name):
        return self.lat.get(name)

    def write_svg(self, name, content):
        with open(os.path.join(self.out, name), 'w') as f:
            f.write(content)
        self.svgs.append(name)

    def header_row(self):
        return ['case'] + [('%s (yardstick)' % b if b == YARDSTICK else b) for b in self.backends]

    # --- layer 1 ---
    EMPTY = [((1, 0), '1 page'), ((4, 0), '4 pages'), ((16, 0), '16 pages'),
             ((512, 0), '512 pages'), ((512, 9), 'superpage (512 @ 2 MiB)'),
             ((1, 4), '1 page @ 64 KiB'), ((16, 8), '16 pages @ 1 MiB')]
    LOADED = [((1, 0), '1 page'), ((16, 0), '16 pages'), ((512, 9), 'superpage'),
              ((1, 4), '1 page @ 64 KiB'), ((16, 8), '16 pages @ 1 MiB')]

    def layer1(self):
        s = ['## Layer 1: the backend alone\n',
             'Pools of 1 GiB from frame 0x40000, built through the registry. Each cell: ns per '
             'allocate + free pair (median of the means of batches of 32) and, in brackets, the '
             'ratio to the first-fit yardstick doing the same pairs on a pool in the same state, '
             'timed in batches interleaved with the backend\'s (below 1 = faster).\n',
             '### Empty pool\n']
        rows = []
        for (p, a), label in self.EMPTY:
            rows.append([label] + [cell(self.b('L1_Empty/pages:%d/align:%d/%s' % (p, a, n)),
                                        'ns', 'x_firstfit') for n in self.backends])
        s.append(md_table(self.header_row(), rows))
        s.append('\n### Loaded pool (the mixed pool below, ~70 % occupied)\n')
        rows = []
        for (p, a), label in self.LOADED:
            rows.append([label] + [cell(self.b('L1_Loaded/pages:%d/align:%d/%s' % (p, a, n)),
                                        'ns', 'x_firstfit') for n in self.backends])
        s.append(md_table(self.header_row(), rows))
        s.append('\n### Mixed steady state and fragmented pool (per operation)\n')
        s.append('Mixed: random 1–64-page requests and frees of random live runs at ~70 % '
                 'occupancy of 1 GiB, after a warm-up. Fragmented: ~100 000 isolated single-page '
                 'holes, then frees of random live runs and 1-page (80 %) or 2–8-page requests at '
                 'constant occupancy. Every operation is timed (fenced rdtsc, timer overhead '
                 'subtracted); ns is the mean, the ratio is to the yardstick\'s mean on the same '
                 'operations (its own benchmark, earlier in the run).\n\n')
        rows = []
        for case in ('Mixed', 'Fragmented'):
            for key, label in (('ns', 'mean'), ('p50_ns', 'p50'), ('p999_ns', 'p99.9'),
                               ('max_ns', 'max')):
                rows.append(['%s, %s' % (case.lower(), label)] +
                            [cell(self.b('L1_%s/%s' % (case, n)), key,
                                  'x_firstfit' if key == 'ns' else None)
                             for n in self.backends])
        for case in ('Mixed', 'Fragmented'):
            rows.append(['%s, failed allocations' % case.lower()] +
                        ['%d' % self.b('L1_%s/%s' % (case, n)).get('failed', 0)
                         if self.b('L1_%s/%s' % (case, n)) and 'failed' in
                         self.b('L1_%s/%s' % (case, n)) else '–' for n in self.backends])
        s.append(md_table(self.header_row(), rows))

        s.append('\n### Tail latency per operation in the fragmented pool\n')
        rows = []
        for n in self.backends:
            bench = self.b('L1_Fragmented/%s' % n)
            row = [n]
            for op in ('alloc_', 'free_'):
                for q in ('p50_ns', 'p99_ns', 'p999_ns', 'max_ns'):
                    row.append(cell(bench, op + q))
            rows.append(row)
        s.append(md_table(['backend', 'alloc p50', 'alloc p99', 'alloc p99.9', 'alloc max',
                           'free p50', 'free p99', 'free p99.9', 'free max'], rows))
        if self.b('L1_Fragmented/%s' % YARDSTICK):
            s.append('\n(The yardstick runs far fewer operations here, so its p99.9 is close to '
                     'its max.)\n')

        groups = [label for _, label in self.EMPTY] + ['mixed p50', 'fragmented p50']
        vals = {}
        for (p, a), label in self.EMPTY:
            for n in self.backends:
                bench = self.b('L1_Empty/pages:%d/align:%d/%s' % (p, a, n))
                if bench and 'ns' in bench:
                    vals[(label, n)] = bench['ns']
        for case in ('Mixed', 'Fragmented'):
            for n in self.backends:
                bench = self.b('L1_%s/%s' % (case, n))
                if bench and 'p50_ns' in bench:
                    vals[('%s p50' % case.lower(), n)] = bench['p50_ns']
        self.write_svg('latency_layer1.svg', grouped_bars(
            'Backend alone: latency per backend and request (log scale)', groups,
            self.backends, vals, 'ns per pair / per op'))
        vals = {}
        for n in self.backends:
            bench = self.b('L1_Fragmented/%s' % n)
            for q, label in (('p50_ns', 'p50'), ('p99_ns', 'p99'), ('p999_ns', 'p99.9'),
                             ('max_ns', 'max')):
                if bench and q in bench:
                    vals[(n, label)] = bench[q]
        self.write_svg('latency_tail.svg', grouped_bars(
            'Fragmented pool (~100 000 holes): latency percentiles per operation', self.backends,
            ['p50', 'p99', 'p99.9', 'max'], vals, 'ns', by_name=False))
        s.append('\n![latency per backend and request](latency_layer1.svg)\n\n'
                 '![tail latency, fragmented pool](latency_tail.svg)\n')
        return '\n'.join(s)

    def scaling(self):
        pools = []
        for name in self.lat:
            m = re.match(r'L1_Scaling/pool:(\d+)([MG])/', name)
            if m:
                mib = int(m.group(1)) * (1024 if m.group(2) == 'G' else 1)
                if (mib, m.group(1) + m.group(2)) not in pools:
                    pools.append((mib, m.group(1) + m.group(2)))
        pools.sort()
        if not pools:
            return ''
        s = ['\n### Scaling: pools of 64 MiB to 64 GiB\n',
             'The mixed workload (70 %, after a warm-up of twice the live runs) on pools of '
             'each size; nothing of that size is touched. ns per operation (mean; ratio to the '
             'yardstick, which only runs up to 4 GiB: its operations take milliseconds beyond), '
             'metadata bytes per GiB managed at 70 % occupancy (fresh in brackets when '
             'different), and construction time.\n\n']
        rows, meta_rows = [], []
        for mib, label in pools:
            rows.append([label] + [cell(self.b('L1_Scaling/pool:%s/%s' % (label, n)), 'ns',
                                        'x_firstfit') for n in self.backends])
            mrow = [label]
            for n in self.backends:
                bench = self.b('L1_Scaling/pool:%s/%s' % (label, n))
                if not bench or 'meta_B_per_GiB' not in bench:
                    mrow.append('–')
                    continue
                m, f = bench['meta_B_per_GiB'], bench['meta_fresh_B_per_GiB']
                txt = fmt_bytes(m)
                if abs(m - f) > 0.01 * max(m, 1):
                    txt += ' (%s)' % fmt_bytes(f)
                txt += ', %s' % fmt_ns(bench.get('construct_us', 0) * 1000)
                mrow.append(txt)
            meta_rows.append(mrow)
        s.append(md_table(['pool'] + self.header_row()[1:], rows))
        s.append('\nMetadata per GiB managed, and construction time:\n\n')
        s.append(md_table(['pool'] + self.header_row()[1:], meta_rows))
        series = []
        for n in self.backends:
            pts = []
            for mib, label in pools:
                bench = self.b('L1_Scaling/pool:%s/%s' % (label, n))
                if bench and 'ns' in bench:
                    pts.append((mib, bench['ns']))
            if pts:
                series.append((n, pts))

        def pool_fmt(mib):
            return '%d GiB' % (mib // 1024) if mib >= 1024 else '%d MiB' % mib
        self.write_svg('scaling.svg', line_chart(
            'Mixed workload at 70 %: ns per operation by pool size', series, 'pool size',
            'ns per operation', xlog=True, ylog=True, xfmt=pool_fmt,
            xticks=[mib for mib, _ in pools]))
        s.append('\n![scaling](scaling.svg)\n')
        return '\n'.join(s)

    # --- layer 2 ---
    def layer2(self):
        cases = [('4K', '', '1 page (4 KiB)'), ('1M', '', '1 MiB'),
                 ('1M', 'cont/', '1 MiB CONTINUOUS')]
        if not any(k.startswith('L2_') for k in self.lat):
            return ''
        s = ['## Layer 2: the C API in process\n',
             'One cycle: `l4re_util_cap_alloc`, `l4re_ma_alloc_align_srv`, `l4re_rm_attach`, '
             'a write to every page, `l4re_rm_detach`, `l4re_util_cap_free_um`, on a root '
             'allocator of each backend (256 MiB pool) installed in a capability slot. The '
             'baseline is what a Linux program does instead: `mmap` + a write to every page + '
             '`munmap`, timed in batches interleaved with the C API\'s. Cells: ns per cycle '
             '(ratio to that interleaved mmap baseline).\n\n']
        rows = []
        for size, flag, label in cases:
            base = self.b('L2_Mmap/size:%s' % size)
            row = [label, cell(base)]
            for n in self.ours:
                row.append(cell(self.b('L2_CApi/size:%s/%s%s' % (size, flag, n)), 'ns', 'x_mmap'))
            rows.append(row)
        s.append(md_table(['cycle', 'mmap (baseline)'] + self.ours, rows))
        return '\n'.join(s)

    # --- layer 3 ---
    def layer3(self):
        if not any(k.startswith('L3_') for k in self.lat):
            return ('## Layer 3: through memd\n\nNot measured in this run (no memd binary, or '
                    'layer 3 filtered out).\n')
        memd_backends = [n for n in self.ours
                         if any(k.startswith('L3_Memd/') and k.endswith('/' + n) for k in self.lat)]
        s = ['## Layer 3: through memd\n',
             'memd runs as its own process per backend (abstract socket, 256 MiB pool); the '
             'client\'s root allocator sits in a capability slot, so the calls take the C API '
             'path of a program with `L4RE_MA_SERVER` set. The baseline is a raw `AF_UNIX` '
             '`SOCK_SEQPACKET` request/reply of the same message sizes to an echo process, timed '
             'in batches interleaved with memd\'s. Both ends are pinned: same core, or client '
             'and server on different cores. Cells: ns (ratio to the raw baseline; for the cycle, '
             'to layer 2\'s in-process cycle on the same backend).\n\n']
        rows = []
        for where in ('same_core', 'cross_core'):
            w = where.replace('_', ' ')
            rows.append(['raw round trip, %s' % w,
                         cell(self.b('L3_Socket/pingpong/%s' % where))] + [''] * len(memd_backends))
            rows.append(['raw round trip with an fd, %s' % w,
                         cell(self.b('L3_Socket/pingpong_fd/%s' % where))] +
                        [''] * len(memd_backends))
            for op, label, ratio in (('stats', 'l4re_ma_stats_srv (1 round trip)', 'x_socket'),
                                     ('alloc_free', 'alloc + release 4 KiB (2 round trips)',
                                      'x_socket'),
                                     ('cycle:4K', 'whole C API cycle, 4 KiB', 'x_inproc'),
                                     ('connect', 'connect + handshake (fd passed)', 'x_socket')):
                row = ['%s, %s' % (label, w), '']
                for n in memd_backends:
                    row.append(cell(self.b('L3_Memd/%s/%s/%s' % (op, where, n)), 'ns', ratio))
                rows.append(row)
        s.append(md_table(['operation', 'raw socket'] + memd_backends, rows))
        return '\n'.join(s)

    # --- fragmentation ---
    def fragmentation(self):
        if not self.frag:
            return ''
        traces = []
        for r in self.frag:
            if r['trace'] not in traces:
                traces.append(r['trace'])
        traces.sort(key=lambda t: (not t.startswith('real_'), t))
        by = {(r['trace'], r['backend']): r for r in self.frag}
        backends = [b for b in self.backends if any((t, b) in by for t in traces)] or \
            sorted({r['backend'] for r in self.frag})
        s = ['## Fragmentation\n',
             'Each trace replayed on each backend, every allocation as one contiguous run '
             '(sizes rounded up to pages, SUPER_PAGES requests to aligned superpages). '
             '`real_*` traces were recorded with strace from real programs, `synth_*` ones '
             'generated (bench/traces/). peak = most bytes live at once; overhead = the smallest '
             'pool that runs the whole trace without a failed allocation (bisection) / peak; '
             'the time-series figures are measured on a pool of 1.25 × peak (rounded up to '
             'superpages).\n']
        pools = {}
        for r in self.series.get('runs', []):
            pools[r['trace']] = r['pool_bytes']
        for metric, label, f in (
                ('overhead', 'Overhead: min_pool_bytes / peak_live_bytes (1.00 is perfect)',
                 lambda v: '%.3f' % v if v is not None else '–'),
                ('failed_allocs', 'Failed allocations on the 1.25 × peak pool',
                 lambda v: '%d' % v),
                ('ext_frag_mean', 'External fragmentation, mean over the replay '
                 '(1 − largest free run / free bytes)', lambda v: '%.3f' % v),
                ('ext_frag_max', 'External fragmentation, maximum', lambda v: '%.3f' % v),
                ('superpage_free_share_mean', 'Share of free memory in whole free superpages, '
                 'mean (higher keeps 2 MiB pages available)', lambda v: '%.3f' % v)):
            s.append('\n### %s\n' % label)
            rows = []
            for t in traces:
                any_r = next((by[(t, b)] for b in backends if (t, b) in by), None)
                row = [t, fmt_bytes(any_r['peak_live_bytes']) if any_r else '–',
                       '%d' % any_r['ops'] if any_r else '–']
                for b in backends:
                    r = by.get((t, b))
                    row.append(f(r[metric]) if r is not None and r.get(metric) is not None
                               else '–')
                rows.append(row)
            s.append(md_table(['trace', 'peak live', 'ops'] + backends, rows))
        s.append('\n')
        for t in traces:
            runs = [r for r in self.series.get('runs', []) if r['trace'] == t]
            if not runs:
                continue
            runs.sort(key=lambda r: (r['backend'] != YARDSTICK, r['backend']))
            series = [(r['backend'], [(p[0], p[2]) for p in r['points']]) for r in runs]
            live = [(p[0], p[1]) for p in runs[0]['points']]
            name = 'frag_%s.svg' % re.sub(r'[^A-Za-z0-9_.-]', '_', t)
            self.write_svg(name, line_chart(
                '%s: external fragmentation over time (pool %s)' % (t, fmt_bytes(pools.get(t))),
                series, 'operation', '1 − largest free run / free', yfmt=lambda v: '%.1f' % v,
                xfmt=lambda v: '%dk' % (v / 1000) if v >= 1000 else '%d' % v,
                background=('grey: live bytes', live), ylo=0, yhi=1))
            s.append('![%s](%s)\n' % (t, name))
        return '\n'.join(s)

    # --- goals ---
    def goal(self, text, backend, value, ok, detail=''):
        self.goals.append({'goal': text, 'backend': backend, 'value': value, 'met': ok,
                           'detail': detail})

    def goals_section(self):
        for n in self.ours:
            e = self.b('L1_Empty/pages:1/align:0/%s' % n)
            if e and 'ns' in e:
                self.goal('backend alone, 1-page allocate+free, empty pool: <= 15 ns median', n,
                          e['ns'], e['ns'] <= 15, fmt_ns(e['ns']))
            m = self.b('L1_Mixed/%s' % n)
            if m and 'p50_ns' in m:
                self.goal('mixed workload (1-64 pages, ~70 %): <= 50 ns per op median', n,
                          m['p50_ns'], m['p50_ns'] <= 50, fmt_ns(m['p50_ns']))
                self.goal('mixed workload: p99.9 <= 1 us', n, m['p999_ns'],
                          m['p999_ns'] <= 1000, fmt_ns(m['p999_ns']))
                if m.get('x_firstfit'):
                    speedup = 1 / m['x_firstfit']
                    self.goal('mixed workload: >= 1000x faster than the first-fit yardstick', n,
                              speedup, speedup >= 1000, '%.0f× faster (mean)' % speedup)
            c = self.b('L2_CApi/size:4K/%s' % n)
            if c and 'x_mmap' in c:
                self.goal('C API in process, 1 page: <= 1.5x mmap + touch + munmap', n,
                          c['x_mmap'], c['x_mmap'] <= 1.5,
                          '%s vs %s (%s)' % (fmt_ns(c['ns']), fmt_ns(c['base_ns']),
                                             fmt_ratio(c['x_mmap'])))
            for where in ('same_core', 'cross_core'):
                for op in ('stats', 'alloc_free'):
                    r = self.b('L3_Memd/%s/%s/%s' % (op, where, n))
                    if r and 'x_socket' in r:
                        self.goal('through memd (%s, %s): <= 1.5x the raw socket ping-pong'
                                  % (op, where.replace('_', ' ')), n, r['x_socket'],
                                  r['x_socket'] <= 1.5,
                                  '%s vs %s (%s)' % (fmt_ns(r['ns']), fmt_ns(r['base_ns']),
                                                     fmt_ratio(r['x_socket'])))
        real = sorted({r['trace'] for r in self.frag if r['trace'].startswith('real_')})
        for t in real:
            rs = [r for r in self.frag if r['trace'] == t and r['backend'] != YARDSTICK
                  and r.get('overhead') is not None]
            if rs:
                best = min(rs, key=lambda r: r['overhead'])
                self.goal('real trace %s: the best backend\'s overhead <= 1.05' % t, best['backend'],
                          best['overhead'], best['overhead'] <= 1.05, '%.3f' % best['overhead'])
        for n in self.ours:
            rs = [r for r in self.frag if r['backend'] == n and r['trace'].startswith('real_')
                  and r.get('overhead') is not None]
            if rs:
                worst = max(rs, key=lambda r: r['overhead'])
                self.goal('real traces: no overhead above 2.0', n, worst['overhead'],
                          worst['overhead'] <= 2.0,
                          'worst %.3f (%s)' % (worst['overhead'], worst['trace']))
        # One row per goal, one column per backend.
        order, cells = [], {}
        for g in self.goals:
            if g['goal'] not in cells:
                order.append(g['goal'])
                cells[g['goal']] = {}
            cells[g['goal']][g['backend']] = g
        rows = []
        for goal in order:
            row = [goal]
            for n in self.ours:
                g = cells[goal].get(n)
                row.append('–' if g is None else
                           ('met: ' if g['met'] else '**missed**: ') + g['detail'])
            rows.append(row)
        return ('## Goals: where each backend stands\n\n'
                'For the real traces, the goal on the best backend is shown in the column of '
                'the backend that did best.\n\n' +
                md_table(['goal'] + self.ours, rows))

    # --- recommendations ---
    def best(self, candidates):
        c = [(v, n) for n, v in candidates if v is not None]
        return min(c)[1] if c else None

    def recommendations(self):
        def lat(name, key):
            return [(n, (self.b(name % n) or {}).get(key)) for n in self.ours]

        def frag_mean(prefix, metric, sign=1):
            out = []
            for n in self.ours:
                vs = [r[metric] for r in self.frag if r['backend'] == n
                      and r['trace'].startswith(prefix) and r.get(metric) is not None]
                out.append((n, sign * sum(vs) / len(vs) if vs else None))
            return out
        rows = []
        for label, cands, fmt in (
                ('fastest single pages on a lightly used pool',
                 lat('L1_Empty/pages:1/align:0/%s', 'ns'), fmt_ns),
                ('fastest in a busy pool (mixed 1–64 pages, p50)', lat('L1_Mixed/%s', 'p50_ns'),
                 fmt_ns),
                ('best worst case in a fragmented pool (p99.9)',
                 lat('L1_Fragmented/%s', 'p999_ns'), fmt_ns),
                ('aligned DMA-style requests in a busy pool (16 pages @ 1 MiB)',
                 lat('L1_Loaded/pages:16/align:8/%s', 'ns'), fmt_ns),
                ('superpages in a busy pool', lat('L1_Loaded/pages:512/align:9/%s', 'ns'),
                 fmt_ns),
                ('least memory on real program traces (mean overhead)',
                 frag_mean('real_', 'overhead'), lambda v: '%.3f' % v),
                ('least memory on synthetic system traces (mean overhead)',
                 frag_mean('synth_', 'overhead'), lambda v: '%.3f' % v),
                ('keeps free memory in whole superpages (mean share, all traces)',
                 frag_mean('', 'superpage_free_share_mean', -1), lambda v: '%.3f' % -v),
                ('smallest metadata on a 64 GiB pool',
                 lat('L1_Scaling/pool:64G/%s', 'meta_B_per_GiB'),
                 lambda v: fmt_bytes(v) + ' per GiB')):
            b = self.best(cands)
            if b is None:
                continue
            v = dict(cands)[b]
            others = ', '.join('%s %s' % (n, fmt(x)) for n, x in cands if n != b and x is not None)
            rows.append([label, '**%s** (%s)' % (b, fmt(v)), others])
        return ('## Which backend for which workload (best measured in this run)\n\n' +
                md_table(['workload', 'best', 'others'], rows))

    def write(self):
        ctx = self.ctx
        head = ['# l4re_ma benchmark report\n',
                '> Quick mode: operation counts scaled down tenfold, one repetition. A smoke '
                'test of the harness, not figures to quote.\n' if self.meta['mode'] == 'quick'
                else '',
                '- date: %s; host: %s CPUs at %s MHz; load average at the start of the latency '
                'run: %s, at the end: %s' % (
                    ctx.get('date', '?'), ctx.get('num_cpus', '?'), ctx.get('mhz_per_cpu', '?'),
                    ', '.join('%.2f' % x for x in ctx.get('load_avg', [])),
                    ', '.join('%.2f' % x for x in self.meta.get('load_end', []))),
                '- commit: %s; mode: %s; latency %.0f s, fragmentation %.0f s' % (
                    self.meta.get('commit', '?'), self.meta['mode'], self.meta['latency_s'],
                    self.meta['fragmentation_s']),
                '- backends: %s; yardstick: %s (address-ordered first fit, bench/firstfit/)' % (
                    ', '.join(self.ours), YARDSTICK),
                '- raw data: [latency.json](latency.json), '
                '[fragmentation.jsonl](fragmentation.jsonl), '
                '[fragmentation_series.json](fragmentation_series.json), '
                '[summary.json](summary.json)\n',
                'Every figure is set against a baseline measured in the same run; the machine is '
                'shared and noisy, so read the ratios before the absolute numbers.\n']
        body = [self.recommendations(), self.goals_section(), self.layer1(), self.scaling(),
                self.layer2(), self.layer3(), self.fragmentation()]
        with open(os.path.join(self.out, 'report.md'), 'w') as f:
            f.write('\n'.join(head) + '\n' + '\n'.join(x for x in body if x))
        summary = {'meta': self.meta, 'backends': self.ours, 'goals': self.goals,
                   'svgs': self.svgs}
        with open(os.path.join(self.out, 'summary.json'), 'w') as f:
            json.dump(summary, f, indent=1)


def git_commit(workspace):
    if not workspace:
        return '?'
    try:
        out = subprocess.run(['git', '-C', workspace, 'rev-parse', '--short', 'HEAD'],
                             capture_output=True, text=True, check=False, timeout=10)
        dirty = subprocess.run(['git', '-C', workspace, 'status', '--porcelain'],
                               capture_output=True, text=True, check=False, timeout=10)
        return out.stdout.strip() + (' + local changes' if dirty.stdout.strip() else '')
    except (OSError, subprocess.SubprocessError):
        return '?'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=None,
                   help='output folder (default: results/ in the workspace)')
    p.add_argument('--quick', action='store_true', help='a run of under a minute (CI)')
    p.add_argument('--latency', default=None, help='the //bench:latency binary')
    p.add_argument('--fragmentation', default=None, help='the //bench:fragmentation binary')
    p.add_argument('--memd', default=None, help='the //server:memd binary')
    p.add_argument('--traces', default=None, help='folder of *.trace files')
    p.add_argument('--latency_args', default='', help='extra arguments for //bench:latency')
    args = p.parse_args()

    workspace = os.environ.get('BUILD_WORKSPACE_DIRECTORY')
    out = args.out
    if out is None:
        out = os.path.join(workspace or os.getcwd(), 'results')
    elif not os.path.isabs(out):
        out = os.path.join(os.environ.get('BUILD_WORKING_DIRECTORY', os.getcwd()), out)
    os.makedirs(out, exist_ok=True)

    latency = args.latency or find_runfile('bench/latency')
    fragmentation = args.fragmentation or find_runfile('bench/fragmentation')
    memd = args.memd or find_runfile('server/memd')
    traces_dir = args.traces or (os.path.dirname(find_runfile('bench/traces/record.sh') or '')
                                 or None)
    for what, path in (('latency', latency), ('fragmentation', fragmentation),
                       ('traces', traces_dir)):
        if not path or not os.path.exists(path):
            raise SystemExit('report: cannot find the %s (pass --%s=PATH)' % (what, what))
    traces = sorted(glob.glob(os.path.join(traces_dir, '*.trace')))
    if not traces:
        raise SystemExit('report: no *.trace files in %s' % traces_dir)

    frag_jsonl = os.path.join(out, 'fragmentation.jsonl')
    series_json = os.path.join(out, 'fragmentation_series.json')
    frag_s = run([fragmentation, '--trace=' + ','.join(traces), '--backend=all', '--json',
                  '--series_out=' + series_json], os.path.join(out, 'fragmentation.log'),
                 frag_jsonl)

    lat_json = os.path.join(out, 'latency.json')
    # The console table is the progress indication; the JSON goes to a file.
    cmd = [latency, '--benchmark_color=false', '--benchmark_out=' + lat_json,
           '--benchmark_out_format=json']
    if args.quick:
        cmd += ['--bench_scale=0.1']
    else:
        # Medians of five: the machines are shared and noisy.
        cmd += ['--benchmark_repetitions=5', '--benchmark_report_aggregates_only=false']
    if memd:
        cmd += ['--memd=' + memd]
    cmd += [a for a in args.latency_args.split() if a]
    lat_s = run(cmd, os.path.join(out, 'latency.log'))

    ctx, lat = load_latency(lat_json)
    with open(frag_jsonl) as f:
        frag = [json.loads(line) for line in f if line.strip()]
    with open(series_json) as f:
        series = json.load(f)
    meta = {'mode': 'quick' if args.quick else 'default', 'latency_s': lat_s,
            'load_end': list(os.getloadavg()),
            'fragmentation_s': frag_s, 'commit': git_commit(workspace),
            'traces': [os.path.basename(t) for t in traces]}
    Report(out, ctx, lat, frag, series, meta).write()
    print('report: wrote %s' % os.path.join(out, 'report.md'), file=sys.stderr)


if __name__ == '__main__':
    main()

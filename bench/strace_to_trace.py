#!/usr/bin/env python3
"""Turns `strace -f -e trace=mmap,munmap,mremap` output into an allocation
trace for //bench:fragmentation (format: bench/trace.h).

    strace -f -e trace=mmap,munmap,mremap,brk,execve -o prog.strace PROGRAM ARGS...
    python3 bench/strace_to_trace.py prog.strace > prog.trace

brk and execve are optional in the filter but make the trace truer: most
programs grow their main heap with brk, and an exec drops the old image.

What becomes what:
  * every successful mmap is an allocation of its length (MAP_HUGETLB gives
    SUPER_PAGES, MAP_LOCKED gives PINNED; everything else flag 0);
  * munmap frees the mappings it covers; a mapping unmapped in part is freed
    and what is left of it allocated again (a trace allocation cannot
    shrink), and so is a mapping partly covered by a MAP_FIXED mmap;
  * mremap frees the old range and allocates the new size;
  * brk (when traced) allocates each increment of the heap as a run of its
    own, as a heap on L4Re grows by new dataspaces, and frees what a
    shrinking break gives back;
  * a successful execve, and the exit of a process (`+++ exited` /
    `+++ killed`), free everything it still maps.
  * PROT_NONE mappings are address-space reservations, not memory (on L4Re
    they would be l4re_rm_reserve_area), and are left out unless
    --keep-prot-none; unmapping them is then ignored too.
Threads share their process's mappings but strace names them by thread id:
a munmap of a range that only another (live) id maps merges the two into
one address space from then on.

Lines may carry strace's pid prefixes ("[pid N] " or "N "), timestamps
(-t, -tt, -ttt, -r) and be split into "<unfinished ...>" / "<... resumed>"
halves. A summary goes to stderr.
"""

import argparse
import bisect
import re
import sys

MAP_FIXED = 0x10
FLAG_PINNED = 0x2
FLAG_SUPER_PAGES = 0x4

LINE = re.compile(
    r'^(?:\[pid\s+(?P<pid1>\d+)\]\s+|(?P<pid2>\d+)\s+)?'
    r'(?:(?:\d+:\d+:\d+(?:\.\d+)?|\d+\.\d+)\s+)?'
    r'(?P<rest>.*)$')
CALL = re.compile(r'^(?P<name>mmap|munmap|mremap|brk|execve)\((?P<args>.*)\)\s+=\s+(?P<ret>\S+)')
UNFINISHED = re.compile(r'^(?P<head>(?:mmap|munmap|mremap|brk|execve)\(.*?)\s*<unfinished \.\.\.>\s*$')
RESUMED = re.compile(r'^<\.\.\. (?P<name>mmap|munmap|mremap|brk|execve) resumed>\s*(?P<tail>.*)$')
EXIT = re.compile(r'^\+\+\+ (?:exited with|killed by) ')


def parse_int(text):
    text = text.strip()
    if text == 'NULL':
        return 0
    return int(text, 0)


class AddressSpace:
    """The mappings of one process: disjoint [start, end) -> trace id."""

    def __init__(self):
        self.starts = []  # sorted
        self.maps = {}    # start -> (end, id)
        self.members = set()
        self.live_members = set()
        self.brk = None  # the current program break, once known

    def overlapping(self, start, end):
        i = bisect.bisect_right(self.starts, start) - 1
        if i < 0:
            i = 0
        out = []
        while i < len(self.starts) and self.starts[i] < end:
            s = self.starts[i]
            e, ident = self.maps[s]
            if e > start:
                out.append((s, e, ident))
            i += 1
        return out

    def add(self, start, end, ident):
        bisect.insort(self.starts, start)
        self.maps[start] = (end, ident)

    def remove(self, start):
        i = bisect.bisect_left(self.starts, start)
        del self.starts[i]
        del self.maps[start]


class Converter:
    def __init__(self, out, keep_prot_none, page_size):
        self.out = out
        self.keep_prot_none = keep_prot_none
        self.page_size = page_size
        self.next_id = 1
        self.group_of = {}  # pid -> AddressSpace
        self.pending = {}   # pid -> first half of an unfinished call
        self.stats = dict(lines=0, mmap=0, munmap=0, mremap=0, brk=0, execve=0, failed=0,
                          prot_none=0, unknown=0, merged=0, exits=0, allocs=0, frees=0)

    def space(self, pid):
        g = self.group_of.get(pid)
        if g is None:
            g = AddressSpace()
            g.members.add(pid)
            g.live_members.add(pid)
            self.group_of[pid] = g
        return g

    def alloc(self, space, start, end, flags):
        ident = self.next_id
        self.next_id += 1
        space.add(start, end, ident)
        fields = ['a', str(ident), str(end - start)]
        if flags:
            fields.append(str(flags))
        self.out.write(' '.join(fields) + '\n')
        self.stats['allocs'] += 1

    def free(self, ident):
        self.out.write('f %d\n' % ident)
        self.stats['frees'] += 1

    def unmap(self, space, start, end):
        """Frees what [start, end) covers; re-allocates the parts left."""
        hit = space.overlapping(start, end)
        for s, e, ident in hit:
            space.remove(s)
            self.free(ident)
            if s < start:
                self.alloc(space, s, start, 0)
            if e > end:
                self.alloc(space, end, e, 0)
        return bool(hit)

    def find_owner(self, pid, start, end):
        """The address space a munmap/mremap by `pid` refers to, merging
        `pid` into another live process's space if only that one maps the
        range (threads)."""
        own = self.space(pid)
        if own.overlapping(start, end):
            return own
        for other in list({id(g): g for g in self.group_of.values()}.values()):
            if other is own or not other.live_members:
                continue
            if other.overlapping(start, end):
                self.merge(own, other)
                return other
        return own

    def merge(self, src, dst):
        """Moves every pid and mapping of src into dst."""
        for s in list(src.starts):
            e, ident = src.maps[s]
            src.remove(s)
            for os_, oe, oid in dst.overlapping(s, e):
                # Cannot happen in one address space; drop the stale one.
                dst.remove(os_)
                self.free(oid)
            dst.add(s, e, ident)
        for pid in src.members:
            self.group_of[pid] = dst
        dst.members |= src.members
        dst.live_members |= src.live_members
        self.stats['merged'] += 1

    def page_round(self, n):
        return (n + self.page_size - 1) // self.page_size * self.page_size

    def call(self, pid, name, args, ret):
        if ret.startswith('-') or ret == '?':
            self.stats['failed'] += 1
            return
        if name == 'execve':
            self.stats['execve'] += 1
            self.drop_all(self.space(pid))
            return
        a = [x.strip() for x in args.split(',')]
        if name == 'brk':
            self.stats['brk'] += 1
            space = self.space(pid)
            new = parse_int(ret)
            old = space.brk
            space.brk = new
            if old is None or new == old:
                return
            if new > old:
                self.alloc(space, old, new, 0)
            else:
                self.unmap(space, new, old)
            return
        if name == 'mmap':
            self.stats['mmap'] += 1
            length = self.page_round(parse_int(a[1]))
            prot, flags = a[2], a[3]
            if prot == 'PROT_NONE' and not self.keep_prot_none:
                self.stats['prot_none'] += 1
                return
            start = parse_int(ret)
            space = self.space(pid)
            self.unmap(space, start, start + length)  # MAP_FIXED over old mappings
            tflags = 0
            if 'MAP_HUGETLB' in flags:
                tflags |= FLAG_SUPER_PAGES
            if 'MAP_LOCKED' in flags:
                tflags |= FLAG_PINNED
            self.alloc(space, start, start + length, tflags)
        elif name == 'munmap':
            self.stats['munmap'] += 1
            start = parse_int(a[0])
            end = start + self.page_round(parse_int(a[1]))
            space = self.find_owner(pid, start, end)
            if not self.unmap(space, start, end):
                self.stats['unknown'] += 1
        else:
            self.stats['mremap'] += 1
            old = parse_int(a[0])
            old_end = old + self.page_round(parse_int(a[1]))
            new_len = self.page_round(parse_int(a[2]))
            new = parse_int(ret)
            space = self.find_owner(pid, old, old_end)
            if not self.unmap(space, old, old_end):
                self.stats['unknown'] += 1
                return  # a PROT_NONE reservation, say
            self.unmap(space, new, new + new_len)
            self.alloc(space, new, new + new_len, 0)

    def exited(self, pid):
        self.stats['exits'] += 1
        space = self.group_of.get(pid)
        if space is None:
            return
        space.live_members.discard(pid)
        if not space.live_members:
            self.drop_all(space)

    def drop_all(self, space):
        """Frees every mapping of `space` (exit, exec)."""
        for s in list(space.starts):
            _, ident = space.maps[s]
            space.remove(s)
            self.free(ident)
        space.brk = None

    def line(self, text):
        self.stats['lines'] += 1
        m = LINE.match(text.rstrip('\n'))
        pid = m.group('pid1') or m.group('pid2') or 'main'
        rest = m.group('rest')
        if EXIT.match(rest):
            self.exited(pid)
            return
        u = UNFINISHED.match(rest)
        if u:
            self.pending[pid] = u.group('head')
            return
        r = RESUMED.match(rest)
        if r:
            head = self.pending.pop(pid, None)
            if head is None:
                return
            rest = head + r.group('tail')
        c = CALL.match(rest)
        if c:
            self.call(pid, c.group('name'), c.group('args'), c.group('ret'))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('input', help='strace output ("-" for stdin)')
    p.add_argument('-o', '--output', default='-', help='trace file (default stdout)')
    p.add_argument('--keep-prot-none', action='store_true',
                   help='treat PROT_NONE mappings (reservations) as memory too')
    p.add_argument('--comment', default='', help='a comment line for the trace header')
    args = p.parse_args()
    src = sys.stdin if args.input == '-' else open(args.input, encoding='utf-8', errors='replace')
    out = sys.stdout if args.output == '-' else open(args.output, 'w', encoding='utf-8')
    out.write('# recorded with strace -f, converted by bench/strace_to_trace.py\n')
    if args.comment:
        out.write('# %s\n' % args.comment)
    conv = Converter(out, args.keep_prot_none, 4096)
    for text in src:
        conv.line(text)
    out.flush()
    s = conv.stats
    print('strace_to_trace: %(lines)d lines: %(mmap)d mmap, %(munmap)d munmap, %(mremap)d mremap, '
          '%(brk)d brk, %(execve)d execve (%(failed)d failed, %(prot_none)d PROT_NONE skipped, %(unknown)d of unknown ranges); '
          '%(exits)d exits, %(merged)d address spaces merged; wrote %(allocs)d allocations, '
          '%(frees)d frees' % s, file=sys.stderr)


if __name__ == '__main__':
    main()

"""Tests of bench/strace_to_trace.py: strace lines in, trace lines out; the
output of a realistic excerpt is accepted by //bench:fragmentation."""

import io
import os
import subprocess
import tempfile
import unittest

from bench import strace_to_trace


def convert(text, keep_prot_none=False):
    out = io.StringIO()
    conv = strace_to_trace.Converter(out, keep_prot_none, 4096)
    for line in text.strip('\n').split('\n'):
        conv.line(line.strip() + '\n')
    return out.getvalue().split('\n')[:-1], conv.stats


ANON = 'PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0'


class StraceToTraceTest(unittest.TestCase):

    def test_mmap_and_munmap(self):
        ops, stats = convert(f'''
            100 mmap(NULL, 8000, {ANON}) = 0x7f0000000000
            100 munmap(0x7f0000000000, 8000) = 0
        ''')
        self.assertEqual(ops, ['a 1 8192', 'f 1'])
        self.assertEqual(stats['mmap'], 1)

    def test_prefixes_timestamps_and_split_calls(self):
        ops, _ = convert(f'''
            [pid   200] 12:00:01.123456 mmap(NULL, 4096, {ANON} <unfinished ...>
            [pid   201] 12:00:01.123460 mmap(NULL, 8192, {ANON}) = 0x7f0000100000
            [pid   200] 12:00:01.123470 <... mmap resumed>) = 0x7f0000000000
            [pid   200] 12:00:01.2 munmap(0x7f0000000000, 4096) = 0
        ''')
        self.assertEqual(ops, ['a 1 8192', 'a 2 4096', 'f 2'])

    def test_failed_calls_are_skipped(self):
        ops, stats = convert(f'''
            1 mmap(NULL, 1099511627776, {ANON}) = -1 ENOMEM (Cannot allocate memory)
            1 munmap(0x1000, 4096) = -1 EINVAL (Invalid argument)
        ''')
        self.assertEqual(ops, [])
        self.assertEqual(stats['failed'], 2)

    def test_partial_munmap_reallocates_what_is_left(self):
        ops, _ = convert(f'''
            1 mmap(NULL, 16384, {ANON}) = 0x10000
            1 munmap(0x11000, 4096) = 0
        ''')
        self.assertEqual(ops, ['a 1 16384', 'f 1', 'a 2 4096', 'a 3 8192'])

    def test_map_fixed_replaces_what_it_covers(self):
        ops, _ = convert('''
            1 mmap(NULL, 20480, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3, 0) = 0x20000
            1 mmap(0x21000, 8192, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3, 0x1000) = 0x21000
        ''')
        self.assertEqual(ops, ['a 1 20480', 'f 1', 'a 2 4096', 'a 3 8192', 'a 4 8192'])

    def test_prot_none_reservations_are_not_memory(self):
        text = f'''
            1 mmap(NULL, 134217728, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0) = 0x40000000
            1 munmap(0x40000000, 4096) = 0
        '''
        ops, stats = convert(text)
        self.assertEqual(ops, [])
        self.assertEqual(stats['prot_none'], 1)
        self.assertEqual(stats['unknown'], 1)
        ops, _ = convert(text, keep_prot_none=True)
        self.assertEqual(ops, ['a 1 134217728', 'f 1', 'a 2 134213632'])

    def test_flags(self):
        ops, _ = convert('''
            1 mmap(NULL, 2097152, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB, -1, 0) = 0x200000
            1 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0) = 0x1000
        ''')
        self.assertEqual(ops, ['a 1 2097152 4', 'a 2 4096 2'])

    def test_mremap_frees_and_allocates(self):
        ops, _ = convert(f'''
            1 mmap(NULL, 8192, {ANON}) = 0x10000
            1 mremap(0x10000, 8192, 65536, MREMAP_MAYMOVE) = 0x80000
        ''')
        self.assertEqual(ops, ['a 1 8192', 'f 1', 'a 2 65536'])

    def test_brk_grows_and_shrinks_the_heap(self):
        ops, stats = convert('''
            1 brk(NULL) = 0x555555000000
            1 brk(0x555555021000) = 0x555555021000
            1 brk(0x555555042000) = 0x555555042000
            1 brk(0x555555031000) = 0x555555031000
            1 brk(0x555555031000) = 0x555555031000
        ''')
        self.assertEqual(ops, ['a 1 135168', 'a 2 135168', 'f 2', 'a 3 65536'])
        self.assertEqual(stats['brk'], 5)

    def test_threads_share_mappings(self):
        ops, stats = convert(f'''
            10 mmap(NULL, 4096, {ANON}) = 0x10000
            11 mmap(NULL, 4096, {ANON}) = 0x20000
            11 munmap(0x10000, 4096) = 0
            10 +++ exited with 0 +++
            11 +++ exited with 0 +++
        ''')
        # 11 unmaps what 10 mapped: one address space; everything is freed
        # only when both have exited.
        self.assertEqual(ops, ['a 1 4096', 'a 2 4096', 'f 1', 'f 2'])
        self.assertEqual(stats['merged'], 1)

    def test_exit_and_exec_free_everything(self):
        ops, _ = convert(f'''
            1 mmap(NULL, 4096, {ANON}) = 0x10000
            1 brk(NULL) = 0x50000
            1 brk(0x52000) = 0x52000
            1 execve("/bin/true", ["true"], 0x7ffd /* 3 vars */) = 0
            1 mmap(NULL, 8192, {ANON}) = 0x10000
            1 +++ exited with 0 +++
        ''')
        self.assertEqual(ops, ['a 1 4096', 'a 2 8192', 'f 1', 'f 2', 'a 3 8192', 'f 3'])

    def test_output_replays(self):
        fragmentation = os.path.join(os.environ['TEST_SRCDIR'], 'l4re_ma', 'bench', 'fragmentation')
        ops, _ = convert(f'''
            1 mmap(NULL, 16384, {ANON}) = 0x10000
            1 munmap(0x11000, 4096) = 0
            2 mmap(NULL, 2097152, PROT_READ, MAP_PRIVATE|MAP_HUGETLB|MAP_ANONYMOUS, -1, 0) = 0x200000
            1 mremap(0x10000, 4096, 65536, MREMAP_MAYMOVE) = 0x80000
            2 +++ killed by SIGKILL +++
        ''')
        with tempfile.NamedTemporaryFile('w', suffix='.trace', dir=os.environ.get('TEST_TMPDIR'),
                                         delete=False) as f:
            f.write('\n'.join(ops) + '\n')
        result = subprocess.run([fragmentation, '--trace=' + f.name, '--backend=firstfit', '--json'],
                                capture_output=True, text=True, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('"failed_allocs":0', result.stdout)


if __name__ == '__main__':
    unittest.main()

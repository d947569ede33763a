"""//bench:report --quick runs end to end (so CI keeps the harness from
rotting): the Markdown, every SVG it links and the JSON files exist and
parse, and every backend appears in the tables."""

import glob
import json
import os
import re
import sys
import unittest
import xml.etree.ElementTree as ET

from bench import report


class ReportQuickTest(unittest.TestCase):

    def test_quick_report(self):
        out = os.path.join(os.environ['TEST_TMPDIR'], 'results')
        argv = sys.argv
        sys.argv = ['report', '--quick', '--out=' + out]
        try:
            report.main()
        finally:
            sys.argv = argv

        with open(os.path.join(out, 'report.md')) as f:
            md = f.read()
        for heading in ('## Goals', '## Layer 1', '## Layer 2', '## Layer 3', '## Fragmentation',
                        '## Which backend'):
            self.assertIn(heading, md)

        # Every linked SVG exists and is well-formed XML with something drawn.
        links = re.findall(r'\]\(([^)]+\.svg)\)', md)
        self.assertGreaterEqual(len(links), 4)
        for name in links:
            root = ET.parse(os.path.join(out, name)).getroot()
            self.assertTrue(root.tag.endswith('svg'), name)
            self.assertGreater(len(list(root)), 3, name)
        self.assertEqual(sorted(links), sorted(os.path.basename(p) for p in
                                               glob.glob(os.path.join(out, '*.svg'))))

        with open(os.path.join(out, 'latency.json')) as f:
            latency = json.load(f)
        self.assertTrue(latency['benchmarks'])
        errors = [b['name'] for b in latency['benchmarks'] if b.get('error_occurred')]
        self.assertEqual(errors, [])

        keys = {'backend', 'trace', 'ops', 'peak_live_bytes', 'min_pool_bytes', 'overhead',
                'failed_allocs', 'ext_frag_mean', 'ext_frag_max', 'superpage_free_share_mean'}
        with open(os.path.join(out, 'fragmentation.jsonl')) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        self.assertTrue(rows)
        for r in rows:
            self.assertEqual(set(r), keys)
        with open(os.path.join(out, 'fragmentation_series.json')) as f:
            self.assertTrue(json.load(f)['runs'])
        with open(os.path.join(out, 'summary.json')) as f:
            summary = json.load(f)
        self.assertTrue(summary['goals'])

        for backend in summary['backends']:
            self.assertIn(backend, md)
        self.assertEqual({r['backend'] for r in rows} - {'firstfit'}, set(summary['backends']))


if __name__ == '__main__':
    unittest.main()

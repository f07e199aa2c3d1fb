#!/usr/bin/env python3
"""The score of the finished shards of scripts/mutants.sh.

    scripts/mutants-score.py [--out /tmp/mut/out] [--rev REV] [-v] [--survivors]

Counts only shards with a `done` file (a shard is a round-robin sample over every file, so a
finished one is an even sample; a half-run one is not). --rev keeps the shards run at that
commit (as written beside each shard), -v adds a line per file, --survivors lists the missed
and timed-out mutants. "caught" is cargo-mutants' verdict: a test failed. A timeout is counted
apart: usually a real hang (the mutant made a loop endless), but a starved machine makes them
too, so check each (docs/testing.md).
"""
import collections, glob, json, math, os, sys

def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    r = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return ((c - r) / d, (c + r) / d)

def arg(name, default=None):
    for i, a in enumerate(sys.argv):
        if a == name and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return default

if '--map' in sys.argv:
    # --map NAMES LIST: one regex per line for the names in NAMES found (by file and
    # description, nearest line) in LIST, a `cargo mutants --list` of the tree to test.
    import re
    names_file, list_file = sys.argv[sys.argv.index('--map') + 1:][:2]
    pat = re.compile(r'^(\S+?):(\d+):(\d+): (.*)$')
    index = collections.defaultdict(list)
    for line in open(list_file):
        m = pat.match(line.strip())
        if m:
            index[(m.group(1), m.group(4))].append((int(m.group(2)), line.strip()))
    for line in open(names_file):
        m = pat.match(line.strip())
        if not m:
            continue
        cands = index.get((m.group(1), m.group(4)))
        if not cands:
            print(f"not in this tree: {line.strip()}", file=sys.stderr)
            continue
        best = min(cands, key=lambda c: abs(c[0] - int(m.group(2))))[1]
        print('^' + re.escape(best) + '$')
    sys.exit(0)

out = arg('--out', '/tmp/mut/out')
want_rev = arg('--rev')
per_file = collections.defaultdict(collections.Counter)
shards = collections.defaultdict(list)
survivors, partial, seconds = [], [], []
for d in sorted(glob.glob(os.path.join(out, '*-*'))):
    f = os.path.join(d, 'mutants.out', 'outcomes.json')
    if not os.path.isdir(d) or not os.path.exists(f):
        continue
    name = os.path.basename(d)
    kind = name.split('-')[0]
    rev = open(d + '.rev').read().strip() if os.path.exists(d + '.rev') else '?'
    if want_rev and rev != want_rev:
        continue
    if not os.path.exists(os.path.join(d, 'done')):
        partial.append(name)
        continue
    shards[kind].append(f"{name.split('-')[1]}@{rev}")
    for o in json.load(open(f))['outcomes']:
        sc = o['scenario']
        if not isinstance(sc, dict):
            continue  # the baseline
        m = sc['Mutant']
        per_file[(kind, m['file'])][o['summary']] += 1
        seconds.append(sum(p['duration'] for p in o['phase_results']))
        if o['summary'] in ('MissedMutant', 'Timeout'):
            survivors.append((m['name'], o['summary']))

for kind in ('broker', 'proto'):
    c = collections.Counter()
    for (k, _), n in per_file.items():
        if k == kind:
            c += n
    viable = c['CaughtMutant'] + c['MissedMutant'] + c['Timeout']
    lo, hi = wilson(c['CaughtMutant'], viable)
    pct = 100 * c['CaughtMutant'] / viable if viable else 0.0
    print(f"src/{kind}: {len(shards[kind])} shard(s) [{' '.join(shards[kind])}]: "
          f"{sum(c.values())} mutants, caught {c['CaughtMutant']}, missed {c['MissedMutant']}, "
          f"timeout {c['Timeout']}, unviable {c['Unviable']}; caught / viable = "
          f"{c['CaughtMutant']}/{viable} = {pct:.1f} % (95 % Wilson interval "
          f"{100 * lo:.1f}-{100 * hi:.1f} %)")
if '-v' in sys.argv:
    for (kind, f), c in sorted(per_file.items()):
        v = c['CaughtMutant'] + c['MissedMutant'] + c['Timeout']
        print(f"  {f}: caught {c['CaughtMutant']}/{v}, missed {c['MissedMutant']}, "
              f"timeout {c['Timeout']}, unviable {c['Unviable']}")
if '--survivors' in sys.argv:
    for name, what in sorted(survivors):
        print(f"  {'TIMEOUT' if what == 'Timeout' else 'MISSED '} {name}")
if seconds:
    seconds.sort()
    print(f"build + test per mutant (one job): median {seconds[len(seconds) // 2]:.1f} s")
if partial:
    print("not finished (not counted): " + ' '.join(partial))

"""Load and query speed of two firth builds, alternating runs (docs/reliability.md, Speed).

Environment: FIRTH_OLD and FIRTH_NEW (the two binaries), BENCH_DIR (a directory holding
base.bin built by the old binary and new.bin by the new one, both with
`firth ngram build --order 5 --skip-symbols --binary X ptb.train.txt`, and v.bin / v.txt from
`firth vectors word2vec --input ptb.train.txt --dim 100 --epochs 1 --min-count 1`), PTB_TEST.

    python3 bench/reliability_speed.py RUNS [CASE-SUBSTRING]
"""
import subprocess, time, re, statistics as st, collections, sys, os
NEW=os.environ['FIRTH_NEW']; OLD=os.environ['FIRTH_OLD']
T=os.environ['PTB_TEST']
DIR=os.environ['BENCH_DIR']
R=int(sys.argv[1]) if len(sys.argv)>1 else 15
d=collections.defaultdict(list)
cases0=[('ngram old (v1 file)',OLD,['ngram','query','base.bin',T,'--summary']),
       ('ngram new (verify)',NEW,['ngram','query','new.bin',T,'--summary']),
       ('ngram new --no-verify',NEW,['ngram','query','new.bin',T,'--summary','--no-verify']),
       ('vectors old v.bin',OLD,['vectors','similar','v.bin','the','-k','3']),
       ('vectors new v.bin',NEW,['vectors','similar','v.bin','the','-k','3']),
       ('vectors old v.txt',OLD,['vectors','similar','v.txt','the','-k','3']),
       ('vectors new v.txt',NEW,['vectors','similar','v.txt','the','-k','3'])]
cases=[c for c in cases0 if (sys.argv[2] in c[0])] if len(sys.argv)>2 else cases0
for i in range(R):
    for name,b,args in cases:
        t=time.perf_counter()
        p=subprocess.run([b]+args,capture_output=True,text=True,cwd=DIR)
        w=time.perf_counter()-t
        assert p.returncode==0, p.stderr
        d[name+' wall_ms'].append(w*1e3)
        m=re.search(r'in ([0-9.]+) ms',p.stderr)
        if m: d[name+' load_ms'].append(float(m.group(1)))
        m=re.search(r'tokens in ([0-9.]+)s',p.stderr)
        if m: d[name+' query_ms'].append(float(m.group(1))*1e3)
for k,v in d.items():
    print(f"{k:40s} median {st.median(v):8.2f}  min {min(v):8.2f}  n={len(v)}")

#!/usr/bin/env python3
"""firth ngram vs KenLM, side by side on the same files.

Runs build (firth ngram build / lmplz), load + query (firth binary / KenLM probing binary) and
perplexity parity, alternating the two tools so machine load hits both, and prints a table of
wall time, peak RSS (/usr/bin/time), model size, perplexity and firth/KenLM ratios.

    KENLM_BIN=/path/to/kenlm/build/bin nice -n 10 python3 bench/ngram/bench.py [--ptb] [--gut8] \
        [--repeat N] [--memory 1G]
    KENLM_BIN=... WORK=/big/disk nice -n 10 python3 bench/ngram/bench.py --scale 5 --repeat 1 --memory 1G

--scale COPIES builds gut8 (folded into lines) repeated COPIES times with both tools at the
same budget, ARPA only, and reports time, peak RSS against the budget and whether the ARPA
files agree; it needs about 2 x 2 GB of ARPA plus the corpus and temporary files in WORK.

--memory gives both tools the same budget (firth -S, lmplz -S); peak RSS is then reported
against it. Each table records the machine load (`uptime`) before and after its runs.

Environment: KENLM_BIN (directory with lmplz, query, build_binary) or LMPLZ (path to lmplz,
the other two taken from its directory); FIRTH (default target/release/firth); PTB (default
../shared/data/ptb); GUT8 (default ../shared/data/gutenberg-en-text8style/gut8, folded
into /tmp/gut8.lines); LMPLZ_ARGS (extra lmplz flags, e.g. "-S 2G"); WORK (default /tmp/firth-ngram-bench). Without KenLM the KenLM columns
are skipped with a message. Never commits or builds KenLM.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRTH = os.environ.get("FIRTH", os.path.join(ROOT, "target/release/firth"))
WORK = os.environ.get("WORK", "/tmp/firth-ngram-bench")
# Extra lmplz flags for the timed build, e.g. LMPLZ_ARGS="-S 2G" (default: lmplz's own, -S 80%).
LMPLZ_ARGS = os.environ.get("LMPLZ_ARGS", "").split()


def kenlm_bin():
    if os.environ.get("KENLM_BIN"):
        d = os.environ["KENLM_BIN"]
    elif os.environ.get("LMPLZ"):
        d = os.path.dirname(os.environ["LMPLZ"])
    else:
        return None
    if not os.path.exists(os.path.join(d, "lmplz")):
        print(f"note: no lmplz in {d}; KenLM columns skipped", file=sys.stderr)
        return None
    return d


def timed(cmd, stdin=None, stdout=None):
    """Runs cmd under /usr/bin/time; returns (wall s, peak RSS MB, cpu s, stderr text)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", tf.name] + cmd
        fin = open(stdin, "rb") if stdin else None
        fout = open(stdout, "wb") if stdout else subprocess.DEVNULL
        p = subprocess.run(full, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
        if fin:
            fin.close()
        if stdout:
            fout.close()
        if p.returncode != 0:
            sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.decode()[-2000:]}")
        e, m, u, s = tf.read().split()[-4:]
        return float(e), int(m) / 1024, float(u) + float(s), p.stderr.decode()


def median_runs(fns, repeat):
    """Runs each fn in fns alternately `repeat` times; returns per-fn median tuples."""
    res = [[] for _ in fns]
    for _ in range(repeat):
        for i, f in enumerate(fns):
            res[i].append(f())
    out = []
    for r in res:
        out.append(tuple(statistics.median(x[j] for x in r) for j in range(3)))
    return out


def ppl_firth(model, text):
    p = subprocess.run([FIRTH, "ngram", "ppl", model, text, "--json"], capture_output=True, check=True)
    return json.loads(p.stdout)["perplexity"]


def ppl_kenlm(kb, model, text):
    p = subprocess.run([os.path.join(kb, "query"), "-v", "summary", model], stdin=open(text, "rb"),
                       capture_output=True, check=True)
    for line in p.stdout.decode().splitlines():
        if line.startswith("Perplexity including OOVs:"):
            return float(line.split("\t")[1])
    sys.exit("no perplexity in KenLM query output")


def ppl_pykenlm(model, text):
    try:
        import kenlm
    except ImportError:
        return None
    m = kenlm.Model(model)
    total, n = 0.0, 0
    for line in open(text):
        total += m.score(line.strip(), bos=True, eos=True)
        n += len(line.split()) + 1
    return 10 ** (-total / n)


def prepare(src_train, src_test, name):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    out = []
    for src, dst in [(src_train, "train.txt"), (src_test, "test.txt")]:
        p = os.path.join(d, dst)
        if not os.path.exists(p):
            with open(src) as f, open(p, "w") as g:
                for line in f:
                    g.write(line.replace("<unk>", "_unk_"))
        out.append(p)
    return d, out[0], out[1]


def prepare_gut8():
    """gut8 folded into lines of at most 200 characters; every 100th line held out as test."""
    lines = "/tmp/gut8.lines"
    if not os.path.exists(lines):
        src = os.environ.get("GUT8", "../shared/data/gutenberg-en-text8style/gut8")
        with open(lines, "w") as g:
            subprocess.run(["fold", "-s", "-w", "200", src], stdout=g, check=True)
    d = os.path.join(WORK, "gut8")
    os.makedirs(d, exist_ok=True)
    train, test = os.path.join(d, "train.txt"), os.path.join(d, "test.txt")
    if not os.path.exists(train):
        with open(lines) as f, open(train, "w") as tr, open(test, "w") as te:
            for i, line in enumerate(f):
                (te if i % 100 == 99 else tr).write(line if line.endswith("\n") else line + "\n")
    return d, train, test


def row(name, f, k, unit, fmt="{:.2f}"):
    if k is None:
        return f"| {name} | {fmt.format(f)} {unit} | (KenLM skipped) | |"
    ratio = f / k if k else float("nan")
    return f"| {name} | {fmt.format(f)} {unit} | {fmt.format(k)} {unit} | {ratio:.2f}x |"


def load_avg():
    return open("/proc/loadavg").read().split()[:3]


def bench(name, train, test, query_text, order, repeat, kb, parity_orders, prune, memory=None):
    d = os.path.dirname(train)
    fa, fb = os.path.join(d, f"f{order}.arpa"), os.path.join(d, f"f{order}.bin")
    ka, kbin = os.path.join(d, f"k{order}.arpa"), os.path.join(d, f"k{order}.probing")
    fmem = ["-S", memory, "-T", d] if memory else []
    kmem = ["-S", memory] if memory else LMPLZ_ARGS
    streamed = []

    def build_f():
        r = timed([FIRTH, "ngram", "build", "-o", str(order), "--arpa", fa, "--binary", fb, train] + fmem)
        streamed.append("streamed through temporary files" in r[3])
        return r[:3]
    fns = [build_f]
    if kb:
        build_k = lambda: timed([os.path.join(kb, "lmplz"), "-o", str(order), "-T", d] + kmem,
                                stdin=train, stdout=ka)[:3]
        fns.append(build_k)
    print(f"[{name}] building order {order} x{repeat} ...", file=sys.stderr)
    load0 = load_avg()
    res = median_runs(fns, repeat)
    load1 = load_avg()
    budget = f"`-S {memory}` for both" if memory else f"firth's default `-S 1G`, lmplz {' '.join(LMPLZ_ARGS) or 'default (-S 80%)'}"
    lines = [f"### {name}: order {order}, {os.path.getsize(train) / 1e6:.0f} MB of training text, {budget}", "",
             f"Load average (1/5/15 min) before the builds: {' '.join(load0)}; after: {' '.join(load1)}. "
             f"firth {'streamed (external memory)' if any(streamed) else 'built in memory'}.", "",
             "| measure | firth | KenLM | firth/KenLM |", "|---|---|---|---|"]
    kres = res[1] if kb else None
    lines.append(row("build wall (ARPA + binary for firth, ARPA for lmplz)", res[0][0], kres and kres[0], "s"))
    lines.append(row("build peak RSS", res[0][1], kres and kres[1], "MB", "{:.0f}"))
    if memory:
        mb = parse_mb(memory)
        lines.append(f"| build peak RSS / budget ({memory} = {mb:.0f} MB) | {res[0][1] / mb:.2f} | "
                     + (f"{kres[1] / mb:.2f} |" if kres else "(skipped) |") + " |")
    lines.append(row("build CPU (user+sys)", res[0][2], kres and kres[2], "s"))
    ksize = None
    if kb:
        subprocess.run([os.path.join(kb, "build_binary"), "probing", ka, kbin], capture_output=True, check=True)
        ksize = os.path.getsize(kbin) / 1e6
    lines.append(row("binary model size (firth vs KenLM probing)", os.path.getsize(fb) / 1e6, ksize, "MB", "{:.1f}"))
    lines.append(row("ARPA size", os.path.getsize(fa) / 1e6, kb and os.path.getsize(ka) / 1e6, "MB", "{:.1f}"))
    # Load + query: whole process, summary only, on a bigger text.
    qf = lambda: timed([FIRTH, "ngram", "query", "--summary", fb, query_text])[:3]
    qfns = [qf]
    if kb:
        qfns.append(lambda: timed([os.path.join(kb, "query"), "-v", "summary", kbin], stdin=query_text)[:3])
    print(f"[{name}] load + query x{max(repeat, 3)} ...", file=sys.stderr)
    q = median_runs(qfns, max(repeat, 3))
    ntok = sum(len(l.split()) + 1 for l in open(query_text))
    kq = q[1] if kb else None
    lines.append(row(f"load + query {ntok} tokens, wall", q[0][0], kq and kq[0], "s", "{:.3f}"))
    lines.append(row("load + query peak RSS", q[0][1], kq and kq[1], "MB", "{:.0f}"))
    lines.append(row("query throughput (tokens / wall s)", ntok / q[0][0], kq and ntok / kq[0], "tok/s", "{:.0f}"))
    # Perplexity, all four directions.
    pf = ppl_firth(fb, test)
    lines.append(row("test perplexity (own model)", pf, kb and ppl_kenlm(kb, ka, test), "", "{:.3f}"))
    if kb:
        lines.append(f"| KenLM query on firth's ARPA | {ppl_kenlm(kb, fa, test):.3f} | | |")
        lines.append(f"| firth on KenLM's ARPA | {ppl_firth(ka, test):.3f} | | |")
    py = ppl_pykenlm(fa, test)
    if py is not None:
        lines.append(f"| python kenlm module on firth's ARPA | {py:.3f} | | |")
    lines.append("")
    if parity_orders:
        lines += ["| model | firth ppl | KenLM ppl | same to 3 decimals |", "|---|---|---|---|"]
        for o, pr in [(o, None) for o in parity_orders] + ([(order, prune)] if prune else []):
            tag = f"order {o}" + (f", --prune {' '.join(pr)}" if pr else "")
            fa2 = os.path.join(d, f"p{o}{'p' if pr else ''}.f.arpa")
            ka2 = os.path.join(d, f"p{o}{'p' if pr else ''}.k.arpa")
            extra = (["--prune"] + pr) if pr else []
            timed([FIRTH, "ngram", "build", "-o", str(o), "--arpa", fa2, train] + extra + fmem)
            f = ppl_firth(fa2, test)
            if kb:
                timed([os.path.join(kb, "lmplz"), "-o", str(o), "-T", d] + extra + kmem, stdin=train, stdout=ka2)
                k = ppl_kenlm(kb, ka2, test)
                lines.append(f"| {tag} | {f:.3f} | {k:.3f} | {'yes' if f'{f:.3f}' == f'{k:.3f}' else 'NO'} |")
            else:
                lines.append(f"| {tag} | {f:.3f} | (skipped) | |")
        lines.append("")
    return "\n".join(lines)


def bench_scale(copies, order, repeat, kb, memory):
    """A corpus larger than memory: gut8 folded into lines and repeated `copies` times, built
    by both tools at the same -S budget, ARPA only for both (lmplz writes no binary). Repeated
    text has no n-grams of adjusted count 1 or 2 at the top order, so both get
    --discount-fallback (the same fixed discounts)."""
    d = os.path.join(WORK, f"gut8x{copies}")
    os.makedirs(d, exist_ok=True)
    lines = os.path.join(WORK, "gut8.lines")
    if not os.path.exists(lines):
        src = os.environ.get("GUT8", "../shared/data/gutenberg-en-text8style/gut8")
        with open(lines + ".tmp", "w") as g:
            subprocess.run(["fold", "-s", "-w", "200", src], stdout=g, check=True)
            g.write("\n")
        os.rename(lines + ".tmp", lines)
    corpus = os.path.join(d, "train.txt")
    if not os.path.exists(corpus):
        with open(corpus + ".tmp", "wb") as g:
            for _ in range(copies):
                with open(lines, "rb") as f:
                    shutil.copyfileobj(f, g, 1 << 24)
        os.rename(corpus + ".tmp", corpus)
    words = int(subprocess.run(["wc", "-w", corpus], capture_output=True, check=True,
                               text=True).stdout.split()[0])
    fa, ka = os.path.join(d, "f.arpa"), os.path.join(d, "k.arpa")
    fns = [lambda: timed([FIRTH, "ngram", "build", "-o", str(order), "--arpa", fa, "-S", memory,
                          "-T", d, corpus, "--discount-fallback"])[:3]]
    if kb:
        fns.append(lambda: timed([os.path.join(kb, "lmplz"), "-o", str(order), "-S", memory, "-T", d,
                                  "--discount_fallback"], stdin=corpus, stdout=ka)[:3])
    print(f"[gut8 x{copies}] building order {order} x{repeat} ...", file=sys.stderr)
    up0 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    res = median_runs(fns, repeat)
    up1 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    mb = parse_mb(memory)
    kres = res[1] if kb else None
    lines_out = [f"### gut8 x{copies} ({words / 1e6:.1f}M words, {os.path.getsize(corpus) / 1e6:.0f} MB): "
                 f"order {order}, `-S {memory}` for both, ARPA only, --discount-fallback", "",
                 f"`uptime` before: {up0}; after: {up1}.", "",
                 "| measure | firth | KenLM | firth/KenLM |", "|---|---|---|---|"]
    lines_out.append(row("build wall (ARPA)", res[0][0], kres and kres[0], "s"))
    lines_out.append(row("build peak RSS", res[0][1], kres and kres[1], "MB", "{:.0f}"))
    lines_out.append(f"| build peak RSS / budget ({memory} = {mb:.0f} MB) | {res[0][1] / mb:.2f} | "
                     + (f"{kres[1] / mb:.2f} |" if kres else "(skipped) |") + " |")
    lines_out.append(row("build CPU (user+sys)", res[0][2], kres and kres[2], "s"))
    lines_out.append(row("ARPA size", os.path.getsize(fa) / 1e6, kb and os.path.getsize(ka) / 1e6, "MB", "{:.1f}"))
    if kb:
        head = lambda p: open(p).read(400).split("\n\n")[0]
        same = subprocess.run(["cmp", "-s", fa, ka]).returncode == 0
        lines_out.append(f"| ARPA header (n-gram counts) equal | {'yes' if head(fa) == head(ka) else 'NO'} | | |")
        lines_out.append(f"| ARPA files byte-identical (`cmp`) | {'yes' if same else 'no'} | | |")
    lines_out.append("")
    for p in (fa, ka):
        if os.path.exists(p):
            os.remove(p)
    return "\n".join(lines_out)


def parse_mb(s):
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    s = s.strip().upper().rstrip("B")
    if s[-1] in units:
        return float(s[:-1]) * units[s[-1]]
    return float(s) / (1 << 20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptb", action="store_true")
    ap.add_argument("--gut8", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--memory", help="the same -S budget for both tools, e.g. 1G")
    ap.add_argument("--scale", type=int, metavar="COPIES",
                    help="build gut8 repeated COPIES times (ARPA only, --discount-fallback) instead")
    a = ap.parse_args()
    if a.scale:
        if not os.path.exists(FIRTH):
            sys.exit(f"{FIRTH} not found: run `cargo build --release -p firth-cli` or set FIRTH")
        print(bench_scale(a.scale, a.order, a.repeat, kenlm_bin(), a.memory or "1G"))
        return
    if not (a.ptb or a.gut8):
        a.ptb = True
    if not os.path.exists(FIRTH):
        sys.exit(f"{FIRTH} not found: run `cargo build --release -p firth-cli` or set FIRTH")
    kb = kenlm_bin()
    if kb is None:
        print("KenLM not found: set KENLM_BIN (or LMPLZ) to compare; firth numbers only", file=sys.stderr)
    out = []
    if a.ptb:
        ptb = os.environ.get("PTB", "../shared/data/ptb")
        d, train, test = prepare(os.path.join(ptb, "ptb.train.txt"), os.path.join(ptb, "ptb.test.txt"), "ptb")
        out.append(bench("PTB", train, test, train, a.order, a.repeat, kb, [2, 3, 4, 5], ["0", "0", "1"],
                         a.memory))
    if a.gut8:
        d, train, test = prepare_gut8()
        out.append(bench("gut8 (19M words)", train, test, test, a.order, a.repeat, kb, [], None,
                         a.memory))
    print("\n".join(out))


if __name__ == "__main__":
    main()

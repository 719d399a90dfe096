#!/usr/bin/env python3
"""firth ngram vs KenLM queries, layout by layout: probing, trie, and trie quantized -q 8 -b 8.

From one ARPA file (built by firth; lmplz builds the same one, see docs/ngram.md) both tools
make their binary files (firth `ngram convert`, KenLM `build_binary`), then, alternating the
tools run by run so machine load hits both:

  load + score   wall time of the whole query process on the test text (`firth ngram query
                 --summary`, KenLM `query -v summary`), median of --repeat runs;
  load only      the same process on a one-word text;
  scoring alone  load + score minus load only.

Throughput ratios are KenLM wall / firth wall (above 1: firth is faster). Also prints file
sizes and test perplexities, and the machine load (`uptime`) before and after.

    KENLM_BIN=/path/to/kenlm/build/bin nice -n 10 python3 bench/ngram/query_bench.py \\
        [--ptb] [--gut8] [--repeat 5] [--copies N]

The test text is PTB's test set (or every 100th line of gut8, as bench.py holds out),
concatenated --copies times (default: PTB 10, gut8 4) so that scoring, not process start,
dominates. Environment as bench.py: KENLM_BIN, FIRTH, PTB, GUT8, WORK.
"""
import argparse, os, statistics, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (same directory: data preparation and timing helpers)

FIRTH = bench.FIRTH


def run_ok(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, **kw)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.decode()[-2000:]}")
    return p


def ppl_firth(model, text):
    out = run_ok([FIRTH, "ngram", "query", "--summary", model, text]).stdout.decode()
    return float(out.split("Perplexity including OOVs:\t")[1].split()[0])


def ppl_kenlm(kb, model, text):
    with open(text, "rb") as f:
        out = run_ok([os.path.join(kb, "query"), "-v", "summary", model], stdin=f).stdout.decode()
    return float(out.split("Perplexity including OOVs:\t")[1].split()[0])


def wall(cmd, stdin):
    """Wall seconds of cmd (under /usr/bin/time), output discarded."""
    return bench.timed(cmd, stdin=stdin)[0]


def layout_files(d, arpa, kb):
    """Builds (if missing) each layout's files: {layout: (firth file, KenLM file)}."""
    specs = {
        "probing": (["--to", "probing"], ["probing"]),
        "trie": (["--to", "trie"], ["trie"]),
        "trie -q 8 -b 8": (["--to", "trie", "-q", "8", "-b", "8"], ["-q", "8", "-b", "8", "trie"]),
    }
    out = {}
    for name, (fargs, kargs) in specs.items():
        tag = name.replace(" ", "").replace("-", "")
        f = os.path.join(d, f"f.{tag}")
        k = os.path.join(d, f"k.{tag}")
        if not os.path.exists(f):
            run_ok([FIRTH, "ngram", "convert", arpa, f] + fargs)
        if kb and not os.path.exists(k):
            run_ok([os.path.join(kb, "build_binary")] + kargs + [arpa, k])
        out[name] = (f, k if kb else None)
    return out


def bench_set(name, d, train, test, order, copies, repeat, kb):
    arpa = os.path.join(d, f"f{order}.arpa")
    if not os.path.exists(arpa):
        print(f"[{name}] building the order-{order} ARPA ...", file=sys.stderr)
        run_ok([FIRTH, "ngram", "build", "-o", str(order), "--arpa", arpa, "-T", d, train])
    text = os.path.join(d, f"test.x{copies}.txt")
    if not os.path.exists(text):
        body = open(test).read()
        with open(text, "w") as g:
            g.write(body * copies)
    # Load only: one short sentence (firth refuses a text with no sentences).
    empty = os.path.join(d, "one.txt")
    with open(empty, "w") as g:
        g.write("the\n")
    ntok = sum(len(l.split()) + 1 for l in open(text))
    files = layout_files(d, arpa, kb)
    load0 = open("/proc/loadavg").read().split()[:3]
    up0 = subprocess.run(["uptime"], capture_output=True).stdout.decode().strip()
    rows = []
    for layout, (f, k) in files.items():
        print(f"[{name}] {layout}: x{repeat} ...", file=sys.stderr)
        fq = lambda t: wall([FIRTH, "ngram", "query", "--summary", f, t], None)
        kq = lambda t: wall([os.path.join(kb, "query"), "-v", "summary", k], t)
        res = {"f": [], "k": [], "f0": [], "k0": []}
        for _ in range(repeat):
            res["f"].append(fq(text))
            if k:
                res["k"].append(kq(text))
            res["f0"].append(fq(empty))
            if k:
                res["k0"].append(kq(empty))
        med = {key: statistics.median(v) if v else None for key, v in res.items()}
        rows.append((layout, f, k, med))
    up1 = subprocess.run(["uptime"], capture_output=True).stdout.decode().strip()
    lines = [f"### {name}: order {order}, test text x{copies} = {ntok} tokens, median of {repeat} alternated runs", "",
             f"Before: `{up0}`", "", f"After: `{up1}`", "",
             "| layout | file size firth / KenLM | ppl firth / KenLM | load+score firth / KenLM | throughput ratio (KenLM wall / firth wall) | load only firth / KenLM | scoring alone firth / KenLM | scoring ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for layout, f, k, m in rows:
        fs = os.path.getsize(f) / 1e6
        pf = ppl_firth(f, test)
        if k:
            ks = os.path.getsize(k) / 1e6
            pk = ppl_kenlm(kb, k, test)
            fsc, ksc = m["f"] - m["f0"], m["k"] - m["k0"]
            lines.append(
                f"| {layout} | {fs:.1f} / {ks:.1f} MB ({fs / ks:.3f}x) | {pf:.3f} / {pk:.3f} | "
                f"{m['f']:.3f} / {m['k']:.3f} s | {m['k'] / m['f']:.2f}x | {m['f0']:.3f} / {m['k0']:.3f} s | "
                f"{fsc:.3f} / {ksc:.3f} s | {ksc / fsc if fsc > 0 else float('nan'):.2f}x |")
        else:
            lines.append(f"| {layout} | {fs:.1f} MB / - | {pf:.3f} / - | {m['f']:.3f} s / - | | {m['f0']:.3f} s / - | {m['f'] - m['f0']:.3f} s / - | |")
    lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ptb", action="store_true")
    ap.add_argument("--gut8", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument("--copies", type=int, help="test text copies (default PTB 10, gut8 4)")
    a = ap.parse_args()
    if not (a.ptb or a.gut8):
        a.ptb = True
    if not os.path.exists(FIRTH):
        sys.exit(f"{FIRTH} not found: run `cargo build --release -p firth-cli` or set FIRTH")
    kb = bench.kenlm_bin()
    out = []
    if a.ptb:
        ptb = os.environ.get("PTB", "../shared/data/ptb")
        d, train, test = bench.prepare(os.path.join(ptb, "ptb.train.txt"), os.path.join(ptb, "ptb.test.txt"), "ptb")
        out.append(bench_set("PTB", d, train, test, a.order, a.copies or 10, a.repeat, kb))
    if a.gut8:
        d, train, test = bench.prepare_gut8()
        out.append(bench_set("gut8", d, train, test, a.order, a.copies or 4, a.repeat, kb))
    print("\n".join(out))


if __name__ == "__main__":
    main()

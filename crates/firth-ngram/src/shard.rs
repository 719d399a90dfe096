//! Building one model on many machines: the single build's two passes, cut into shards that
//! any job runner can run, and a merge that ends in the single build's estimation.
//!
//! 1. **Vocabulary** (`firth ngram vocab`): each shard's words in order of first appearance,
//!    with their counts, written as a vocabulary file; the shards' files are then merged in
//!    shard order. A word's id in the single build is its rank by first appearance in the whole
//!    text, which is its first appearance in the first shard that has it: so the merge takes
//!    each shard's list in turn and appends the words not seen yet, and the ids come out as the
//!    single build assigns them.
//! 2. **Counting** (`firth ngram count`): each shard counts its N-grams with the merged
//!    vocabulary (so ids, and packed keys, are global) into one sorted count file of
//!    `(key, count)` records.
//! 3. **Merge** (`firth ngram merge`): the count files are merged (equal keys summed) into the
//!    stream of N-gram counts that counting a single text gives, and estimated and written
//!    exactly as the single build does ([`crate::build`]), so the files are byte-identical.
//!
//! Sentences never span lines, so counting shards separately loses nothing, provided every
//! shard but the last ends with a newline (lmplz, and so firth, give a final line without one
//! no `</s>`; `split -n l/N` cuts at line ends).

use crate::build::{check_temp_dir, count_options, estimate_counted};
use crate::count::{self, Packing, Runs};
use crate::extsort::{fan_in, read_buffer, Merger, RecReader, RecWriter, TempFile};
use crate::input::Stdin;
use crate::kn::BuildOptions;
use crate::stream::{Outputs, Summary};
use crate::util::{shown, write_atomic};
use crate::{Corpus, CorpusOptions, Error, Result};
use std::io::{BufRead, Seek, Write};
use std::path::{Path, PathBuf};

const VOCAB_MAGIC: &str = "firth-ngram-vocab 1";
const COUNT_MAGIC: &[u8; 8] = b"FIRTHCNT";
const COUNT_VERSION: u32 = 1;
/// magic, version, order, bits, reserved, vocabulary fingerprint, records.
const COUNT_HEADER: u64 = 8 + 4 * 4 + 8 + 8;
const RECORD: u64 = 24;

/// A vocabulary as the shard steps pass it on: the words and counts, and how the text was
/// split into tokens (which counting must repeat).
#[derive(Debug)]
pub struct Vocab {
    pub corpus: Corpus,
    pub options: CorpusOptions,
}

impl Vocab {
    /// The vocabulary pass over one shard's files (`-` is standard input).
    pub fn scan(files: &[PathBuf], options: CorpusOptions) -> Result<Vocab> {
        let corpus = Corpus::scan(files, options, &Stdin::Direct, &mut |_| {})?;
        Ok(Vocab { corpus, options })
    }

    /// Writes the vocabulary file: a header line, then `count TAB word` per id.
    pub fn write(&self, path: &Path) -> Result<()> {
        let c = &self.corpus;
        write_atomic(path, |w| {
            writeln!(
                w,
                "{VOCAB_MAGIC} chars={} skip_symbols={} sentences={} word_tokens={} types={}",
                self.options.chars as u8,
                self.options.skip_symbols as u8,
                c.sentences,
                c.word_tokens,
                c.vocab_size()
            )?;
            for (word, n) in c.words.iter().zip(&c.counts) {
                writeln!(w, "{n}\t{word}")?;
            }
            Ok(())
        })
    }

    /// Reads a vocabulary file written by [`Vocab::write`], checking every line.
    pub fn read(path: &Path) -> Result<Vocab> {
        let bad = |line: u64, msg: String| Error::Format {
            path: shown(path),
            line,
            msg,
        };
        let mut r = crate::input::open(path, &Stdin::Direct)?;
        let mut buf = String::new();
        let rd = |source| Error::Read {
            path: shown(path),
            err: source,
        };
        let what = "not a firth vocabulary file (make one with `firth ngram vocab`)";
        let n = r.read_line(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => bad(1, what.into()),
            _ => rd(e),
        })?;
        let head = buf.trim_end_matches('\n');
        let Some(fields) = head.strip_prefix(VOCAB_MAGIC).filter(|_| n > 0) else {
            return Err(bad(1, what.into()));
        };
        let get = |name: &str| -> Result<u64> {
            fields
                .split(' ')
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(1, format!("the header lacks {name}=NUMBER; {what}")))
        };
        let options = CorpusOptions {
            chars: get("chars")? != 0,
            skip_symbols: get("skip_symbols")? != 0,
        };
        let (sentences, word_tokens, types) =
            (get("sentences")?, get("word_tokens")?, get("types")?);
        let mut words = Vec::new();
        let mut counts = Vec::new();
        let mut line = 1u64;
        loop {
            buf.clear();
            let n = r.read_line(&mut buf).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => bad(line + 1, "invalid UTF-8".into()),
                _ => rd(e),
            })?;
            if n == 0 {
                break;
            }
            line += 1;
            let entry = buf.strip_suffix('\n').ok_or_else(|| {
                bad(line, "the file ends inside a line: truncated; write it again with `firth ngram vocab`".into())
            })?;
            let (count, word) = entry
                .split_once('\t')
                .and_then(|(c, w)| Some((c.parse::<u64>().ok()?, w)))
                .filter(|(_, w)| !w.is_empty())
                .ok_or_else(|| bad(line, format!("expected COUNT<TAB>WORD, found {entry:?}")))?;
            words.push(word.to_string());
            counts.push(count);
        }
        let reserved = ["<unk>", "<s>", "</s>"];
        if words.len() as u64 != types || words.len() < 3 || words[..3] != reserved {
            return Err(Error::File {
                path: shown(path),
                msg: format!(
                    "holds {} words where the header says {types}, or does not start with <unk> <s> </s>: truncated or edited; write it again with `firth ngram vocab`",
                    words.len()
                ),
            });
        }
        let corpus =
            Corpus::from_vocab(words, counts, sentences, word_tokens).map_err(|w| Error::File {
                path: shown(path),
                msg: format!(
                    "the word {w:?} is listed twice; write the file again with `firth ngram vocab`"
                ),
            })?;
        Ok(Vocab { corpus, options })
    }

    /// Merges shard vocabularies given in shard order: words keep the order in which the
    /// whole text, read shard after shard, first shows them; counts are added.
    pub fn merge(paths: &[PathBuf]) -> Result<Vocab> {
        let mut merged: Option<Vocab> = None;
        for p in paths {
            let v = Vocab::read(p)?;
            match &mut merged {
                None => merged = Some(v),
                Some(m) => {
                    if (m.options.chars, m.options.skip_symbols)
                        != (v.options.chars, v.options.skip_symbols)
                    {
                        return Err(Error::File {
                            path: shown(p),
                            msg: format!("was made with other --chars / --skip-symbols settings than {}; make every shard's vocabulary with the same flags", shown(&paths[0]).display()),
                        });
                    }
                    m.corpus.absorb(&v.corpus);
                }
            }
        }
        merged.ok_or_else(|| Error::Config("give the shard vocabulary files to merge".into()))
    }

    /// A 64-bit fingerprint of the words in id order: count files record the vocabulary that
    /// their ids come from, so a merge refuses counts made with another one.
    pub fn fingerprint(&self) -> u64 {
        let mut h = 0x5851_f42d_4c95_7f2du64;
        for w in &self.corpus.words {
            h = crate::hash::mix(h.rotate_left(7) ^ crate::hash::string(w.as_bytes()));
        }
        h
    }
}

/// Counts one shard's N-grams with the merged vocabulary and writes them, sorted by packed key
/// and with equal keys added up, to the count file `out`, inside `opts.memory`. Returns the
/// number of distinct N-grams written.
pub fn count_shard(
    files: &[PathBuf],
    vocab: &Vocab,
    opts: &BuildOptions,
    out: &Path,
) -> Result<u64> {
    check_temp_dir(opts)?;
    let pack = Packing::new(opts.order, vocab.corpus.vocab_size())?;
    let count_opts = count_options(&vocab.corpus, opts, 0);
    let runs = count::count_files(
        files,
        vocab.options,
        &Stdin::Direct,
        &vocab.corpus,
        &pack,
        &count_opts,
        &mut |_| {},
    )?;
    let mut stream = runs.stream(&opts.temp_dir, count_opts.memory)?;
    let mut inner: Option<Error> = None;
    let mut records = 0u64;
    let res = write_atomic(out, |w| {
        let header = |w: &mut dyn Write, records: u64| -> std::io::Result<()> {
            w.write_all(COUNT_MAGIC)?;
            for x in [COUNT_VERSION, pack.order as u32, pack.bits, 0] {
                w.write_all(&x.to_le_bytes())?;
            }
            w.write_all(&vocab.fingerprint().to_le_bytes())?;
            w.write_all(&records.to_le_bytes())
        };
        header(w, 0)?;
        let mut rec = [0u8; RECORD as usize];
        loop {
            match stream.next() {
                Ok(Some(x)) => {
                    crate::extsort::Rec::put(&x, &mut rec);
                    w.write_all(&rec)?;
                    records += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    inner = Some(e);
                    return Err(std::io::Error::other("count"));
                }
            }
        }
        // The record count goes into the header once it is known.
        w.seek(std::io::SeekFrom::Start(0))?;
        header(w, records)?;
        Ok(())
    });
    match inner {
        Some(e) => Err(e),
        None => res.map(|_| records),
    }
}

/// A count file's header, checked against the vocabulary.
struct CountFile {
    path: PathBuf,
    order: usize,
}

fn open_count_file(path: &Path, vocab: &Vocab) -> Result<CountFile> {
    let bad = |msg: String| Error::File {
        path: path.to_path_buf(),
        msg,
    };
    let mut head = [0u8; COUNT_HEADER as usize];
    let mut f = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        err: source,
    })?;
    let size = f
        .metadata()
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            err: source,
        })?
        .len();
    let what = "not a firth count file (make one with `firth ngram count`)";
    if size < COUNT_HEADER {
        return Err(bad(format!("{size} bytes is too short: {what}")));
    }
    std::io::Read::read_exact(&mut f, &mut head).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        err: source,
    })?;
    if &head[..8] != COUNT_MAGIC {
        return Err(bad(what.into()));
    }
    let u32_at = |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(head[o..o + 8].try_into().unwrap());
    if u32_at(8) != COUNT_VERSION {
        return Err(bad(format!(
            "count file version {}, this firth reads version {COUNT_VERSION}; count the shard again",
            u32_at(8)
        )));
    }
    let (order, bits, fp, records) = (u32_at(12) as usize, u32_at(16), u64_at(24), u64_at(32));
    if fp != vocab.fingerprint() {
        return Err(bad("was counted with another vocabulary than the one given; count every shard with the merged vocabulary (`firth ngram count --vocab`)".into()));
    }
    let pack = Packing::new(order, vocab.corpus.vocab_size())?;
    if bits != pack.bits {
        return Err(bad(format!(
            "packs {bits} bits per word where this vocabulary needs {}: damaged; count the shard again",
            pack.bits
        )));
    }
    if size != COUNT_HEADER + records * RECORD {
        return Err(bad(format!(
            "is {size} bytes but its header promises {records} records ({} bytes): truncated or damaged; count the shard again",
            COUNT_HEADER + records * RECORD
        )));
    }
    Ok(CountFile {
        path: path.to_path_buf(),
        order,
    })
}

/// Merges shard count files (made with `vocab`) and builds the model from them exactly as
/// [`crate::build::build_files`] builds it from the whole text: same estimation, same files.
/// The order is the count files'; `opts.order` must agree or be 0.
pub fn merge_build(
    vocab: &Vocab,
    counts: &[PathBuf],
    opts: &BuildOptions,
    out: &Outputs,
    progress: &mut dyn FnMut(&str),
) -> Result<Summary> {
    check_temp_dir(opts)?;
    if counts.is_empty() {
        return Err(Error::Config(
            "give the shards' count files to merge".into(),
        ));
    }
    let files = counts
        .iter()
        .map(|p| open_count_file(p, vocab))
        .collect::<Result<Vec<_>>>()?;
    let order = files[0].order;
    if let Some(f) = files.iter().find(|f| f.order != order) {
        return Err(Error::File {
            path: f.path.clone(),
            msg: format!(
                "holds {}-grams but {} holds {order}-grams; count every shard with the same --order",
                f.order,
                files[0].path.display()
            ),
        });
    }
    if opts.order != 0 && opts.order != order {
        return Err(Error::Config(format!(
            "the count files hold {order}-grams but --order {} was given; leave --order out or count again",
            opts.order
        )));
    }
    let opts = BuildOptions {
        order,
        ..opts.clone()
    };
    let pack = Packing::new(order, vocab.corpus.vocab_size())?;
    let memory = count_options(&vocab.corpus, &opts, 0).memory;
    progress("merging counts");
    // More files than one merge reads at once are first merged in groups into temporary runs.
    let k = fan_in(memory);
    let mut temps: Vec<TempFile> = Vec::new();
    let mut open: Vec<&CountFile> = files.iter().collect();
    if open.len() > k {
        for group in open.chunks(k) {
            let mut m = merger(group, memory)?;
            let mut w = RecWriter::<(u128, u64)>::create(&opts.temp_dir, "shards")?;
            while let Some(x) = m.next()? {
                w.push(&x)?;
            }
            temps.push(w.finish()?);
        }
        open.clear();
    }
    let runs = if temps.is_empty() {
        Runs::Merged(merger(&open, memory)?, files.len())
    } else {
        Runs::Merged(
            crate::extsort::merge(temps, &opts.temp_dir, memory)?,
            files.len(),
        )
    };
    estimate_counted(&vocab.corpus, runs, &pack, &opts, out, progress)
}

fn merger(files: &[&CountFile], memory: u64) -> Result<Merger<(u128, u64)>> {
    let bytes = read_buffer(memory, files.len());
    let readers = files
        .iter()
        .map(|f| RecReader::at(&f.path, COUNT_HEADER, bytes, true))
        .collect::<Result<Vec<_>>>()?;
    Merger::from_readers(readers, Vec::new())
}

//! The command tree. Each subcommand lives in `cmd/` and owns its arguments.

use clap::{Parser, Subcommand};

use crate::cmd;

#[derive(Parser)]
#[command(name = "firth", version, about = "Word vectors, n-gram and recurrent language models, and recurrent sequence models", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a character LSTM on the bundled Tiny Shakespeare for about two minutes, compare it
    /// with an n-gram baseline, and print a sample.
    Quickstart(cmd::quickstart::Args),
    /// Neural language models: train, eval, generate.
    Lm(cmd::lm::Args),
    /// Count n-gram language models (Kneser-Ney, ARPA, binary), query them, sample from them.
    Ngram(cmd::ngram::Args),
    /// Word vectors: word2vec (skip-gram, CBOW) and GloVe; similar, analogy, eval, plot.
    Vectors(cmd::vectors::Args),
    /// Charts as SVG and PNG: training curves (run dir or metrics.csv), gradient-flow and agreement CSVs, embedding maps (--vectors).
    Plot(cmd::insight::PlotArgs),
    /// Sequence taggers (POS, NER) on CoNLL column files: train, predict, eval.
    Tag(cmd::tag::Args),
    /// Sentence classifiers (sentiment): train, predict, eval.
    Classify(cmd::classify::Args),
    /// Machine translation: an attentional encoder-decoder; train, run, eval, attention maps.
    Translate(cmd::translate::Args),
    /// Speech recognition (CTC over MFCCs): features, FSDD data, train, transcribe, eval.
    Speech(cmd::speech::Args),
    /// Corpus BLEU and chrF of a translation against references, as sacrebleu computes them.
    Bleu(cmd::bleu::Args),
    /// Byte-pair encoding, subword-nmt compatible: learn merges, apply them, join subwords back.
    Bpe(cmd::bpe::Args),
    /// Penn-Treebank-style tokenization of raw English text ("don't." -> "do n't ."), per line.
    Tokenize(cmd::tokenize::Args),
    /// A local page and JSON API to look inside models and vector files (127.0.0.1 by default).
    Serve(cmd::serve::Args),
}

pub fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Quickstart(a) => cmd::quickstart::run(a),
        Command::Lm(a) => cmd::lm::run(a),
        Command::Ngram(a) => cmd::ngram::run(a),
        Command::Vectors(a) => cmd::vectors::run(a),
        Command::Plot(a) => cmd::insight::plot(a),
        Command::Tag(a) => cmd::tag::run(a),
        Command::Classify(a) => cmd::classify::run(a),
        Command::Translate(a) => cmd::translate::run(a),
        Command::Speech(a) => cmd::speech::run(a),
        Command::Bleu(a) => cmd::bleu::run(a),
        Command::Bpe(a) => cmd::bpe::run(a),
        Command::Tokenize(a) => cmd::tokenize::run(a),
        Command::Serve(a) => cmd::serve::run(a),
    }
}

//! Word vectors: word2vec (skip-gram, CBOW) and GloVe, formats, queries, evaluation.

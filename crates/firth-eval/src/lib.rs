//! Metrics: perplexity, analogy, Spearman, entity F1, BLEU.

//! Count n-gram language models: Kneser-Ney, ARPA, binary models, queries.

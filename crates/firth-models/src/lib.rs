//! Language models, taggers, classifiers and decoding built on firth-nn.

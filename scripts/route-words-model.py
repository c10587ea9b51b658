#!/usr/bin/env python3
"""Writes pipeline/src/decorate/routes/bigrams.rs: how likely each letter is to
follow another in English words, for the `heuristic` route mode to tell a word
(`orders`, `checkout`) from a random identifier (`CfMkAGbE`).

    apt-get install wamerican     # Debian's American English word list
    python3 scripts/route-words-model.py > pipeline/src/decorate/routes/bigrams.rs

Each word of the list is read as ` word ` (the space marks its ends), letters
only, lower case; transitions are counted with one extra count each (so none
is impossible) and turned into natural logarithms of the probability of the
next symbol given the current one. A segment's score is the geometric mean of
its transition probabilities; it is a word when the score is above THRESHOLD.
"""
import math
import sys

SYMBOLS = "abcdefghijklmnopqrstuvwxyz "
WORDS = "/usr/share/dict/american-english"
# Chosen on a sample of 5,100 segments (common path words, dictionary words
# and random letter strings of 6 to 32 letters): above it, path words such as
# `users`, `checkout` or `document` stay, and 98% of the random strings go.
THRESHOLD = 0.024


def main():
    counts = [[1] * len(SYMBOLS) for _ in SYMBOLS]
    for line in open(WORDS, encoding="utf-8"):
        word = "".join(c for c in line.strip().lower() if c in SYMBOLS[:26])
        if not word or not line.strip().isascii():
            continue
        framed = f" {word} "
        for a, b in zip(framed, framed[1:]):
            counts[SYMBOLS.index(a)][SYMBOLS.index(b)] += 1
    out = sys.stdout
    out.write("//! Written by scripts/route-words-model.py from Debian's American English\n")
    out.write("//! word list: `LOG_PROB[a][b]` is the natural logarithm of the probability\n")
    out.write("//! that symbol `b` follows symbol `a` in a word (symbols: `a`..`z`, then\n")
    out.write("//! the space that marks a word's ends).\n\n")
    out.write(f"/// Symbols: the 26 letters and the word boundary.\npub const SYMBOLS: usize = {len(SYMBOLS)};\n\n")
    out.write("/// A segment whose mean transition probability is at most this is not a word.\n")
    out.write(f"pub const WORD_THRESHOLD: f64 = {THRESHOLD};\n\n")
    out.write("#[rustfmt::skip]\npub const LOG_PROB: [[f32; SYMBOLS]; SYMBOLS] = [\n")
    for row in counts:
        total = sum(row)
        cells = ", ".join(f"{math.log(c / total):.4f}" for c in row)
        out.write(f"    [{cells}],\n")
    out.write("];\n")


if __name__ == "__main__":
    main()

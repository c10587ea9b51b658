//! The `heuristic` unmatched mode, with Beyla's rules: a path segment stays
//! when it looks like words, and becomes the wildcard when it holds a digit
//! or a character outside ASCII letters, `-`, `_` and `.` (one such character
//! is allowed second, so `v1` and `v2` stay), or when one of its parts
//! between `-`, `_` and `.` does not read like English (`CfMkAGbE`), judged
//! by how likely each letter is to follow the previous one in English words
//! (`bigrams.rs`).

use super::bigrams::{LOG_PROB, SYMBOLS, WORD_THRESHOLD};

/// Paths are cut before their tenth `/`, as Beyla cuts them.
const MAX_SEPARATORS: usize = 9;

/// Appends the route of `path` (`/users/*/orders` for `/users/42/orders`,
/// with `*` as `wildcard`) to `out`, a buffer the caller reuses.
pub(super) fn push_heuristic_route(path: &str, wildcard: &str, out: &mut String) {
    // Beyla stops at what would start a query or a fragment.
    let path = path.split(['?', '&', '#']).next().unwrap_or("");
    for (i, segment) in path.split('/').enumerate() {
        if i > MAX_SEPARATORS {
            break;
        }
        if i > 0 {
            out.push('/');
        }
        if !segment.is_empty() {
            out.push_str(if keeps(segment) { segment } else { wildcard });
        }
    }
}

/// Whether a segment stays as it is.
fn keeps(segment: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_alphabetic() || matches!(b, b'-' | b'_' | b'.' | b' ');
    segment
        .bytes()
        .enumerate()
        .all(|(i, b)| allowed(b) || i == 1)
        && reads_as_words(segment)
}

/// Every part between `-`, `_` and `.` reads as a word; an empty part
/// (a separator first, or two in a row) does not.
fn reads_as_words(segment: &str) -> bool {
    let mut parts = segment.split(['-', '_', '.']).peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if part.is_empty() {
            if !last {
                return false;
            }
        } else if !is_word(part) {
            return false;
        }
    }
    true
}

/// The letters of `part` (other characters skipped, case ignored): the
/// geometric mean of their transition probabilities is above the threshold.
/// One letter or none is a word.
fn is_word(part: &str) -> bool {
    let mut symbols = part.bytes().filter_map(|b| match b.to_ascii_lowercase() {
        c @ b'a'..=b'z' => Some(usize::from(c - b'a')),
        b' ' => Some(SYMBOLS - 1),
        _ => None,
    });
    let Some(mut previous) = symbols.next() else {
        return true;
    };
    let (mut sum, mut transitions) = (0.0f64, 0u32);
    for symbol in symbols {
        sum += f64::from(LOG_PROB[previous][symbol]);
        transitions += 1;
        previous = symbol;
    }
    transitions == 0 || (sum / f64::from(transitions)).exp() > WORD_THRESHOLD
}

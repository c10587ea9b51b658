//! Splits SQL text into tokens, enough to tell literals, identifiers and
//! comments apart; it never fails: text cut off by the capture ends in a
//! token that runs to the end.

use super::Dialect;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A keyword or an unquoted identifier.
    Word,
    /// `"name"` (PostgreSQL) or `` `name` `` (MySQL).
    QuotedIdent,
    /// A string literal, with its prefix (`E'..'`, `X'..'`, `_utf8mb4'..'`) or dollar quotes.
    Str,
    Number,
    /// A bind parameter: `$1` (PostgreSQL), `?` (MySQL).
    Param,
    Comment,
    Space,
    /// Any other single character: operators, parentheses, commas, dots.
    Punct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    pub text: &'a str,
    /// Byte offset of the token in the whole text.
    pub start: usize,
}

impl Token<'_> {
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }

    pub fn is_word(&self, keyword: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    pub fn is_punct(&self, c: u8) -> bool {
        self.kind == TokenKind::Punct && self.text.as_bytes() == [c]
    }
}

#[derive(Clone)]
pub(crate) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    dialect: Dialect,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str, dialect: Dialect) -> Self {
        Self::at(text, 0, dialect)
    }

    /// Starts at byte `offset`, which must be where a token starts (or the end).
    pub fn at(text: &'a str, offset: usize, dialect: Dialect) -> Self {
        Lexer {
            text,
            pos: offset,
            dialect,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn byte(&self, i: usize) -> Option<u8> {
        self.bytes().get(i).copied()
    }

    /// Length of a quoted run starting at `open` (the quote itself), through its closing quote
    /// or to the end of the text. A doubled quote is one quote character; `backslash` also
    /// makes `\` escape the next byte.
    fn quoted(&self, open: usize, quote: u8, backslash: bool) -> usize {
        let bytes = self.bytes();
        let mut i = open + 1;
        while let Some(&b) = bytes.get(i) {
            if backslash && b == b'\\' {
                i += 2;
            } else if b == quote {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1 - open;
                }
            } else {
                i += 1;
            }
        }
        bytes.len() - open
    }

    fn word_len(&self, start: usize) -> usize {
        self.bytes()
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| is_word_byte(b))
            .count()
    }

    fn number_len(&self, start: usize) -> usize {
        let bytes = self.bytes();
        let mut i = start;
        while let Some(&b) = bytes.get(i) {
            let exponent_sign = (b == b'+' || b == b'-')
                && matches!(bytes.get(i.wrapping_sub(1)), Some(b'e' | b'E'))
                && !matches!(bytes.get(start + 1), Some(b'x' | b'X' | b'b' | b'B'));
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
                i += 1;
            } else {
                break;
            }
        }
        i - start
    }

    /// `$tag$` at `start` (PostgreSQL dollar quoting): the length of the whole quoted string.
    fn dollar_quoted(&self, start: usize) -> Option<usize> {
        let bytes = self.bytes();
        let tag_len = bytes
            .get(start + 1..)?
            .iter()
            .take_while(|&&b| b != b'$' && is_word_byte(b))
            .count();
        if bytes.get(start + 1 + tag_len) != Some(&b'$')
            || bytes.get(start + 1).is_some_and(u8::is_ascii_digit)
        {
            return None;
        }
        let tag = bytes.get(start..start + tag_len + 2)?;
        let body = start + tag.len();
        let close = memchr::memmem::find(bytes.get(body..)?, tag);
        Some(match close {
            Some(at) => body + at + tag.len() - start,
            None => bytes.len() - start,
        })
    }

    /// A string literal right after a word that prefixes one (`E'..'`, `X'..'`, `N'..'`,
    /// MySQL `_charset'..'`): the length of word and string together.
    fn prefixed_string(&self, start: usize, word_len: usize) -> Option<usize> {
        let quote_at = start + word_len;
        if self.byte(quote_at) != Some(b'\'') {
            return None;
        }
        let word = self.text.get(start..quote_at)?;
        let prefix = ["e", "b", "x", "n"]
            .iter()
            .any(|p| word.eq_ignore_ascii_case(p));
        let charset = self.dialect == Dialect::MySql && word.starts_with('_');
        if !prefix && !charset {
            return None;
        }
        let backslash = word.eq_ignore_ascii_case("e") || self.dialect == Dialect::MySql;
        Some(word_len + self.quoted(quote_at, b'\'', backslash))
    }

    fn comment_len(&self, start: usize) -> Option<usize> {
        let bytes = self.bytes();
        let rest = bytes.get(start..)?;
        let line_comment = match (rest, self.dialect) {
            // MySQL wants a space or control character after `--` (`1--1` is arithmetic).
            ([b'-', b'-', after, ..], Dialect::MySql) => {
                after.is_ascii_whitespace() || after.is_ascii_control()
            }
            ([b'-', b'-', ..], _) => true,
            ([b'#', ..], Dialect::MySql) => true,
            _ => false,
        };
        if line_comment {
            return Some(memchr::memchr(b'\n', rest).unwrap_or(rest.len()));
        }
        if !rest.starts_with(b"/*") {
            return None;
        }
        // PostgreSQL nests block comments; MySQL does not.
        let nests = self.dialect == Dialect::Postgres;
        let mut depth = 0usize;
        let mut i = 0;
        while i < rest.len() {
            match rest.get(i..i + 2) {
                Some(b"/*") if depth == 0 || nests => {
                    depth += 1;
                    i += 2;
                }
                Some(b"*/") => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => i += 1,
            }
        }
        Some(rest.len())
    }

    fn next_kind_and_len(&self, start: usize, b: u8) -> (TokenKind, usize) {
        use TokenKind::*;
        if b.is_ascii_whitespace() {
            let len = self.bytes()[start..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            return (Space, len);
        }
        if let Some(len) = self.comment_len(start) {
            return (Comment, len);
        }
        let next = self.byte(start + 1);
        match (b, self.dialect) {
            (b'\'', dialect) => (Str, self.quoted(start, b'\'', dialect == Dialect::MySql)),
            (b'"', Dialect::Postgres) => (QuotedIdent, self.quoted(start, b'"', false)),
            (b'"', Dialect::MySql) => (Str, self.quoted(start, b'"', true)),
            (b'`', Dialect::MySql) => (QuotedIdent, self.quoted(start, b'`', false)),
            (b'?', Dialect::MySql) => (Param, 1),
            (b'$', Dialect::Postgres) if next.is_some_and(|n| n.is_ascii_digit()) => {
                let digits = self.bytes()[start + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                (Param, 1 + digits)
            }
            (b'$', Dialect::Postgres) => match self.dollar_quoted(start) {
                Some(len) => (Str, len),
                None => (Punct, 1),
            },
            _ if b.is_ascii_digit() || (b == b'.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                (Number, self.number_len(start))
            }
            _ if is_word_start(b) => {
                let len = self.word_len(start);
                match self.prefixed_string(start, len) {
                    Some(len) => (Str, len),
                    None => (Word, len),
                }
            }
            _ => (Punct, 1),
        }
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let start = self.pos;
        let b = self.byte(start)?;
        let (kind, len) = self.next_kind_and_len(start, b);
        // Every length ends on an ASCII byte or at the end of the text, so the
        // slice is on character boundaries; the fallback only guards that reasoning.
        let end = (start + len.max(1)).min(self.text.len());
        let end = (end..=self.text.len())
            .find(|&e| self.text.is_char_boundary(e))
            .unwrap_or(self.text.len());
        self.pos = end;
        Some(Token {
            kind,
            text: self.text.get(start..end).unwrap_or_default(),
            start,
        })
    }
}

/// Identifiers start with a letter, `_` or any non-ASCII character.
fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Later characters may also be digits and `$`.
fn is_word_byte(b: u8) -> bool {
    is_word_start(b) || b.is_ascii_digit() || b == b'$'
}

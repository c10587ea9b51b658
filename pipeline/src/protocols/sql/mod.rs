//! SQL statement text, shared by the PostgreSQL and MySQL protocols: the
//! operation and table a statement names (`db.operation.name`,
//! `db.collection.name`), and its text with the literals hidden
//! (`db.query.text`). A tokenizer, not a parser: it never fails, and text cut
//! off by the capture still gives what its first bytes say.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(test)]
pub(crate) mod capture;
mod lexer;
pub mod stream;
mod summary;
#[cfg(test)]
mod tests;

pub use summary::{summarize, Summary};

use crate::model::{Operation, ShortString, SqlOperation, Tid, TraceContext};
use crate::protocols::{Anomaly, Exchange, Record};
use lexer::{Lexer, TokenKind};

/// Longest statement text a span carries; longer text is cut (at a character boundary).
pub const MAX_QUERY_TEXT: usize = 4096;

/// Where the two SQL dialects tokenize differently: what `"` quotes, whether `\` escapes in
/// strings, `?` or `$1` parameters, `#` comments, nested block comments, dollar quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
}

/// How `db.query.text` shows a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryText {
    /// Every string and number literal replaced by `?` (the default: literals may hold
    /// personal data, and they make every statement's text different).
    #[default]
    Sanitized,
    /// The text as the application sent it.
    Raw,
}

/// Set once at start-up from the configuration; every SQL protocol reads it.
static RAW_QUERY_TEXT: AtomicBool = AtomicBool::new(false);

/// How every SQL span shows its statement from now on.
pub fn set_query_text(setting: QueryText) {
    RAW_QUERY_TEXT.store(setting == QueryText::Raw, Ordering::Relaxed);
}

fn query_text_setting() -> QueryText {
    if RAW_QUERY_TEXT.load(Ordering::Relaxed) {
        QueryText::Raw
    } else {
        QueryText::Sanitized
    }
}

/// One statement and its answer, as an SQL protocol's stitcher records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub system: &'static str,
    pub dialect: Dialect,
    pub tid: Tid,
    pub start_mono_ns: u64,
    pub end_mono_ns: u64,
    pub context: TraceContext,
    /// The statement's text off the wire; None when it was prepared before tracing began
    /// (the exchange is then undecodable: no span, never a guess).
    pub text: Option<ShortString>,
    pub namespace: Option<ShortString>,
    pub error_code: Option<ShortString>,
}

impl Record for Statement {
    fn into_exchange(self) -> Result<Exchange, (TraceContext, Anomaly)> {
        let Some(text) = self.text else {
            return Err((self.context, Anomaly::Undecodable));
        };
        let summary = summarize(&text, self.dialect);
        let query = query_text(&text, self.dialect, query_text_setting());
        Ok(Exchange {
            tid: self.tid,
            start_mono_ns: self.start_mono_ns,
            end_mono_ns: self.end_mono_ns,
            context: self.context,
            operation: Operation::Sql(SqlOperation {
                system: self.system,
                operation: summary.operation,
                collection: summary.collection.map(ShortString::from),
                query: ShortString::from(query.as_ref()),
                namespace: self.namespace,
                error_code: self.error_code,
            }),
        })
    }
}

/// Statement bytes off the wire as the text a span keeps: decoded, and cut to
/// [`MAX_QUERY_TEXT`].
pub fn statement_text(bytes: &[u8]) -> ShortString {
    let bytes = bytes.get(..MAX_QUERY_TEXT).unwrap_or(bytes);
    ShortString::from(decode(bytes).as_ref())
}

/// `text` with each string and numeric literal replaced by `?`; identifiers, keywords,
/// parameters, comments and spacing kept. A literal cut off at the end (a capture that
/// stopped inside it) is replaced too.
pub fn sanitize(text: &str, dialect: Dialect) -> Cow<'_, str> {
    let mut lexer = Lexer::new(text, dialect);
    let Some(first) = lexer
        .clone()
        .find(|t| matches!(t.kind, TokenKind::Str | TokenKind::Number))
    else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(text.get(..first.start).unwrap_or_default());
    lexer = Lexer::at(text, first.start, dialect);
    for token in lexer {
        match token.kind {
            TokenKind::Str | TokenKind::Number => out.push('?'),
            _ => out.push_str(token.text),
        }
    }
    Cow::Owned(out)
}

/// The text a span shows for `text`, as `setting` says.
pub fn query_text(text: &str, dialect: Dialect, setting: QueryText) -> Cow<'_, str> {
    match setting {
        QueryText::Sanitized => sanitize(text, dialect),
        QueryText::Raw => Cow::Borrowed(text),
    }
}

/// Statement bytes off the wire as text. Invalid UTF-8 is replaced, except that a character
/// the capture cut in two at the end is dropped rather than shown as a replacement.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(e) if e.error_len().is_none() => {
            // Everything before the cut character is valid.
            let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
            String::from_utf8_lossy(valid)
        }
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

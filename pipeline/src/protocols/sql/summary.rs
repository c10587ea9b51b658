//! The operation a statement performs and the table it names, read from its
//! tokens without a full parse.

use super::lexer::{Lexer, Token, TokenKind};
use super::Dialect;

/// What a span says about its statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary<'a> {
    /// `db.operation.name`: the statement's keyword, upper case; only known keywords,
    /// so that the value has a small, fixed set of values.
    pub operation: Option<&'static str>,
    /// `db.collection.name`: the first table the statement names, as written
    /// (schema prefix and quotes included).
    pub collection: Option<&'a str>,
}

/// Statement keywords reported as `db.operation.name`.
const OPERATIONS: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "REPLACE",
    "UPSERT",
    "VALUES",
    "TABLE",
    "COPY",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "RENAME",
    "COMMENT",
    "GRANT",
    "REVOKE",
    "BEGIN",
    "START",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE",
    "END",
    "ABORT",
    "SET",
    "SHOW",
    "RESET",
    "USE",
    "DESCRIBE",
    "EXPLAIN",
    "ANALYZE",
    "VACUUM",
    "CALL",
    "DO",
    "EXECUTE",
    "PREPARE",
    "DEALLOCATE",
    "DECLARE",
    "FETCH",
    "CLOSE",
    "MOVE",
    "LISTEN",
    "NOTIFY",
    "UNLISTEN",
    "LOCK",
    "UNLOCK",
    "DISCARD",
    "REFRESH",
    "REINDEX",
    "CLUSTER",
    "CHECKPOINT",
    "LOAD",
    "HANDLER",
    "OPTIMIZE",
    "REPAIR",
    "CHECK",
    "FLUSH",
    "KILL",
];

/// Statements a `WITH` clause can introduce.
const WITH_BODIES: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE",
];

/// Keywords that may stand between a statement's keyword and its table.
const MODIFIERS: &[&str] = &[
    "ONLY",
    "LOW_PRIORITY",
    "HIGH_PRIORITY",
    "DELAYED",
    "QUICK",
    "IGNORE",
    "TEMP",
    "TEMPORARY",
    "UNLOGGED",
    "GLOBAL",
    "LOCAL",
    "OR",
];

/// Reads `text` as one statement (the first, when there are several).
pub fn summarize(text: &str, dialect: Dialect) -> Summary<'_> {
    let tokens = Significant::new(text, dialect);
    let mut words = tokens.clone().skip_while(|t| t.is_punct(b'('));
    let Some(first) = words.next() else {
        return Summary::default();
    };
    let (operation, rest) = if first.is_word("WITH") {
        let Some(body) = with_body(tokens.after(first.end())) else {
            return Summary::default();
        };
        (keyword(&body, WITH_BODIES), tokens.after(body.end()))
    } else {
        (keyword(&first, OPERATIONS), tokens.after(first.end()))
    };
    let Some(operation) = operation else {
        return Summary::default();
    };
    Summary {
        operation: Some(operation),
        collection: collection(operation, rest),
    }
}

/// The upper-case keyword `token` is, among `list`.
fn keyword(token: &Token<'_>, list: &[&'static str]) -> Option<&'static str> {
    if token.kind != TokenKind::Word {
        return None;
    }
    list.iter()
        .copied()
        .find(|k| token.text.eq_ignore_ascii_case(k))
}

/// Tokens other than spaces and comments, each with its byte offset.
#[derive(Clone)]
struct Significant<'a> {
    lexer_text: &'a str,
    dialect: Dialect,
    inner: std::iter::Filter<Lexer<'a>, fn(&Token<'a>) -> bool>,
}

impl<'a> Significant<'a> {
    fn new(text: &'a str, dialect: Dialect) -> Self {
        Self::from(text, 0, dialect)
    }

    fn from(text: &'a str, offset: usize, dialect: Dialect) -> Self {
        let keep: fn(&Token<'a>) -> bool =
            |t| !matches!(t.kind, TokenKind::Space | TokenKind::Comment);
        Significant {
            lexer_text: text,
            dialect,
            inner: Lexer::at(text, offset, dialect).filter(keep),
        }
    }

    /// The tokens that start at or after byte `offset`.
    fn after(&self, offset: usize) -> Self {
        Self::from(self.lexer_text, offset, self.dialect)
    }
}

impl<'a> Iterator for Significant<'a> {
    type Item = Token<'a>;
    fn next(&mut self) -> Option<Token<'a>> {
        self.inner.next()
    }
}

/// The keyword of the statement after a `WITH` clause: the first statement keyword outside
/// the parentheses of the common table expressions.
fn with_body<'a>(tokens: impl Iterator<Item = Token<'a>>) -> Option<Token<'a>> {
    let mut depth = 0usize;
    for token in tokens {
        if token.is_punct(b'(') {
            depth += 1;
        } else if token.is_punct(b')') {
            depth = depth.checked_sub(1)?;
        } else if depth == 0 && keyword(&token, WITH_BODIES).is_some() {
            return Some(token);
        }
    }
    None
}

/// The table `operation` acts on, from the tokens after its keyword.
fn collection<'a>(operation: &str, tokens: Significant<'a>) -> Option<&'a str> {
    let text = tokens.lexer_text;
    let mut tokens = tokens.peekable();
    match operation {
        "SELECT" => {
            // The first FROM at this statement's level (not `EXTRACT(x FROM y)` or a subquery).
            let mut depth = 0usize;
            loop {
                let token = tokens.next()?;
                if token.is_punct(b'(') {
                    depth += 1;
                } else if token.is_punct(b')') {
                    depth = depth.checked_sub(1)?;
                } else if depth == 0 && token.is_word("FROM") {
                    break;
                }
            }
        }
        "INSERT" | "REPLACE" | "UPSERT" | "MERGE" => {
            skip_modifiers(&mut tokens);
            if tokens.peek().is_some_and(|t| t.is_word("INTO")) {
                tokens.next();
            }
        }
        "DELETE" => {
            skip_modifiers(&mut tokens);
            if tokens.peek().is_some_and(|t| t.is_word("FROM")) {
                tokens.next();
            }
        }
        "UPDATE" | "COPY" => {}
        "TRUNCATE" => {
            if tokens.peek().is_some_and(|t| t.is_word("TABLE")) {
                tokens.next();
            }
        }
        "CREATE" | "DROP" | "ALTER" => {
            // `CREATE OR REPLACE TEMP TABLE IF NOT EXISTS name`; other objects name no table.
            skip_modifiers(&mut tokens);
            if tokens.peek().is_some_and(|t| t.is_word("REPLACE")) {
                tokens.next();
                skip_modifiers(&mut tokens);
            }
            if !tokens.next()?.is_word("TABLE") {
                return None;
            }
            while tokens
                .peek()
                .is_some_and(|t| t.is_word("IF") || t.is_word("NOT") || t.is_word("EXISTS"))
            {
                tokens.next();
            }
        }
        _ => return None,
    }
    skip_modifiers(&mut tokens);
    let name = qualified_name(text, &mut tokens)?;
    // After FROM, a name followed by a parenthesis is a function (`generate_series(1, 3)`);
    // after INSERT INTO or CREATE TABLE it opens the column list.
    if operation == "SELECT" && tokens.peek().is_some_and(|t| t.is_punct(b'(')) {
        return None;
    }
    Some(name)
}

fn skip_modifiers<'a>(tokens: &mut std::iter::Peekable<impl Iterator<Item = Token<'a>>>) {
    while tokens
        .peek()
        .is_some_and(|t| MODIFIERS.iter().any(|m| t.is_word(m)))
    {
        tokens.next();
    }
}

/// `name`, `schema.name`, `"Quoted".name`: the text from its first to its last part.
fn qualified_name<'a>(
    text: &'a str,
    tokens: &mut std::iter::Peekable<impl Iterator<Item = Token<'a>>>,
) -> Option<&'a str> {
    let first = tokens.next().filter(is_name)?;
    let mut end = first.end();
    while tokens.peek().is_some_and(|t| t.is_punct(b'.')) {
        tokens.next();
        let part = tokens.next().filter(is_name)?;
        end = part.end();
    }
    text.get(first.start..end)
}

fn is_name(token: &Token<'_>) -> bool {
    match token.kind {
        TokenKind::QuotedIdent => true,
        TokenKind::Word => !RESERVED_AFTER_FROM.iter().any(|k| token.is_word(k)),
        _ => false,
    }
}

/// Words that can follow FROM / INTO / UPDATE but are no table.
const RESERVED_AFTER_FROM: &[&str] = &["LATERAL", "SELECT", "VALUES", "UNNEST", "STDIN", "STDOUT"];

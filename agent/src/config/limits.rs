//! Limits on the config file, checked before it is parsed. The YAML and TOML
//! parsers cost far more than the file's size on hostile input: a 26 MB flat
//! list took 3.2 GB, 4 MiB of `{` over 90 s, 2 MiB of `- ` 600 MB. A
//! configuration is a few kilobytes and a few levels deep, so anything far
//! beyond is refused at once with one sentence.

use std::fmt;
use std::fs::{File, FileType};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};

/// Largest config file read: real ones are a few kilobytes, and a Kubernetes
/// ConfigMap holds at most 1 MiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Deepest nesting of sections, lists and flow collections (`[`, `{`), and
/// of dotted TOML keys. Beyla's deepest key is 4 levels down.
pub const MAX_NESTING: usize = 64;

/// Reads the config file at `path`: a regular file of at most
/// [`MAX_FILE_BYTES`], in UTF-8. The error is the reason, for
/// `ConfigError::Read`.
pub fn read(path: &str) -> Result<String, String> {
    // Non-blocking, so that opening a FIFO with no writer does not hang;
    // a regular file ignores the flag.
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err(format!(
            "it is {}, not a regular file: expected a YAML or TOML file",
            describe(metadata.file_type())
        ));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_big(Some(metadata.len())));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    // It grew since it was measured.
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(None));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "byte {} is not UTF-8: expected a YAML or TOML text file",
            e.utf8_error().valid_up_to()
        )
    })
}

fn too_big(len: Option<u64>) -> String {
    let size = match len {
        Some(len) => format!("{len} bytes"),
        None => "growing".to_string(),
    };
    format!("it is {size}: expected a config file of at most {MAX_FILE_BYTES} bytes (1 MiB)")
}

fn describe(kind: FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Where the nesting went past [`MAX_NESTING`], 1-based.
#[derive(Debug, PartialEq, Eq)]
pub struct TooDeep {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nested deeper than {MAX_NESTING} levels at line {} column {}: expected a configuration at most {MAX_NESTING} levels deep",
            self.line, self.column
        )
    }
}

/// The syntax whose nesting is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Yaml,
    Toml,
}

/// Measures how deep `text` nests, in one pass and without building
/// anything: flow collections (`[`, `{`) outside strings and comments; for
/// YAML the block levels its indentation opens (a compact `- - x` opens one
/// per dash); for TOML the dots of a key or table header. Each is held to
/// [`MAX_NESTING`]. It is an estimate of what the parser would build, near
/// enough for a limit no real configuration comes close to.
pub fn check_nesting(text: &str, syntax: Syntax) -> Result<(), TooDeep> {
    let mut flow = 0usize;
    let mut quote: Option<u8> = None;
    // Column of each open block level (YAML).
    let mut blocks: Vec<usize> = Vec::new();
    // A YAML block scalar (`|`, `>`): lines indented past this are its text.
    let mut scalar_indent: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        let blank = indent == bytes.len() || bytes.get(indent) == Some(&b'#');
        if let Some(parent) = scalar_indent {
            if blank || indent > parent {
                continue;
            }
            scalar_indent = None;
        }
        let too_deep = |column: usize| TooDeep {
            line: n + 1,
            column: column + 1,
        };
        let mut i = 0;
        if syntax == Syntax::Yaml && quote.is_none() && flow == 0 && !blank {
            while blocks.last().is_some_and(|&top| top > indent) {
                blocks.pop();
            }
            if blocks.last() != Some(&indent) {
                blocks.push(indent);
            }
            // Compact nested sequences and complex keys: each indicator opens a level.
            i = indent;
            loop {
                if blocks.len() > MAX_NESTING {
                    return Err(too_deep(i));
                }
                let indicator = matches!(bytes.get(i), Some(b'-' | b'?'))
                    && bytes.get(i + 1).is_none_or(|&b| b == b' ');
                if !indicator {
                    break;
                }
                i += 2;
                blocks.push(i);
            }
        }
        // The last byte, and the last that was not a space.
        let (mut last, mut prev) = (b' ', b' ');
        let mut dots = 0usize;
        let mut toml_value = false;
        while let Some(&b) = bytes.get(i) {
            match quote {
                // An escape: `\"` in double quotes, `''` in single ones.
                Some(b'"') if b == b'\\' => i += 1,
                Some(b'\'') if b == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 1,
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None => match b {
                    b'#' if last == b' ' || last == b'\t' => break,
                    b'"' | b'\'' if opens_string(prev, syntax) => quote = Some(b),
                    b'[' | b'{' => {
                        flow += 1;
                        if flow > MAX_NESTING {
                            return Err(too_deep(i));
                        }
                    }
                    b']' | b'}' => flow = flow.saturating_sub(1),
                    b'=' => toml_value = true,
                    b'.' if syntax == Syntax::Toml && !toml_value => {
                        dots += 1;
                        if dots > MAX_NESTING {
                            return Err(too_deep(i));
                        }
                    }
                    _ => {}
                },
            }
            last = b;
            if b != b' ' && b != b'\t' {
                prev = b;
            }
            i += 1;
        }
        if syntax == Syntax::Yaml && quote.is_none() && flow == 0 && opens_block_scalar(line) {
            scalar_indent = Some(indent);
        }
    }
    Ok(())
}

/// Whether a quote after `prev` (the last character that was not a space)
/// starts a string: at the start of a value, key or list item, not inside
/// a plain word (`don't`).
fn opens_string(prev: u8, syntax: Syntax) -> bool {
    match syntax {
        Syntax::Yaml => matches!(prev, b' ' | b':' | b'-' | b'[' | b'{' | b',' | b'?'),
        Syntax::Toml => matches!(prev, b' ' | b'=' | b'[' | b'{' | b',' | b'.'),
    }
}

/// A line that ends in a block scalar header: `key: |`, `- >-`, `text: |2+`.
fn opens_block_scalar(line: &str) -> bool {
    let content = match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    };
    let header = content
        .trim_end()
        .trim_end_matches(|c: char| c == '+' || c == '-' || c.is_ascii_digit());
    (header.ends_with('|') || header.ends_with('>'))
        && matches!(
            header[..header.len() - 1].trim_end().chars().last(),
            None | Some(':' | '-' | '?')
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(text: &str, syntax: Syntax) -> Option<(usize, usize)> {
        check_nesting(text, syntax)
            .err()
            .map(|e| (e.line, e.column))
    }

    /// A file of this test's own, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let path =
                std::env::temp_dir().join(format!("beyla-limits-{}-{name}", std::process::id()));
            let _ = std::fs::remove_file(&path);
            Scratch(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("a UTF-8 temp path")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn only_a_regular_file_within_the_size_is_read() {
        let expected = "not a regular file: expected a YAML or TOML file";
        assert_eq!(
            read("/dev/zero"),
            Err(format!("it is a character device, {expected}"))
        );
        let dir = std::env::temp_dir();
        assert_eq!(
            read(dir.to_str().unwrap()),
            Err(format!("it is a directory, {expected}"))
        );
        let fifo = Scratch::new("fifo");
        let c_path = std::ffi::CString::new(fifo.path()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo has no other precondition.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // No writer: a blocking open would wait forever.
        assert_eq!(read(fifo.path()), Err(format!("it is a FIFO, {expected}")));

        let big = Scratch::new("big.yml");
        std::fs::write(&big.0, vec![b'#'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert_eq!(
            read(big.path()),
            Err(
                "it is 1048577 bytes: expected a config file of at most 1048576 bytes (1 MiB)"
                    .into()
            )
        );
        std::fs::write(&big.0, b"a: 1\n\xff\n").unwrap();
        assert_eq!(
            read(big.path()),
            Err("byte 5 is not UTF-8: expected a YAML or TOML text file".into())
        );
        std::fs::write(&big.0, vec![b'#'; MAX_FILE_BYTES as usize]).unwrap();
        assert_eq!(
            read(big.path()).map(|t| t.len()),
            Ok(MAX_FILE_BYTES as usize)
        );
        assert!(read("/nonexistent/beyla.yml").is_err_and(|e| e.contains("No such file")));
    }

    #[test]
    fn real_configurations_pass() {
        let yaml = "\
discovery:
  services:
    - name: web # a comment with { and [
      open_port: 8080
      exe_path: \"{[weird]\"
  instrument:
    - k8s_pod_labels: {app: 'it''s [fine'}
routes:
  patterns: [/users/{id}, /a/b]
  description: |
    free text {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{
      - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
otel_traces_export:
  endpoint: http://tempo:4318 # don't
";
        assert_eq!(check_nesting(yaml, Syntax::Yaml), Ok(()));
        let toml = "\
[discovery]
[[discovery.services]]
name = \"web\"
open_port = 8080
exe_path = 'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c'
[attributes.kubernetes]
enable = true
version = 1.25
";
        assert_eq!(check_nesting(toml, Syntax::Toml), Ok(()));
    }

    #[test]
    fn deep_nesting_is_found_where_it_passes_the_limit() {
        let flow = "[".repeat(100_000);
        assert_eq!(depth_error(&flow, Syntax::Yaml), Some((1, MAX_NESTING + 1)));
        assert_eq!(depth_error(&flow, Syntax::Toml), Some((1, MAX_NESTING + 1)));
        let braces = format!("a:\n  b: {}", "{".repeat(MAX_NESTING + 1));
        assert!(depth_error(&braces, Syntax::Yaml).is_some_and(|(line, _)| line == 2));
        let dashes = format!("{}x\n", "- ".repeat(100_000));
        assert_eq!(
            depth_error(&dashes, Syntax::Yaml),
            Some((1, 2 * MAX_NESTING + 1))
        );
        let block: String = (0..200).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        assert_eq!(
            depth_error(&block, Syntax::Yaml),
            Some((MAX_NESTING + 1, MAX_NESTING + 1))
        );
        let dotted = format!("{}=1\n", "a.".repeat(100));
        assert_eq!(
            depth_error(&dotted, Syntax::Toml),
            Some((1, 2 * MAX_NESTING + 2))
        );
        // Just within the limit.
        let fits = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        assert_eq!(check_nesting(&fits, Syntax::Yaml), Ok(()));
    }
}

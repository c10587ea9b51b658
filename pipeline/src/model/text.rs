//! `ShortString`: the text a span carries per request (path, route) without a
//! heap allocation in the common case.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// Longest text kept inline; the size makes the whole value 64 bytes.
const INLINE: usize = 62;

/// An immutable string stored inline up to 62 bytes (nearly every path and
/// route), shared on the heap beyond, so that creating one per request costs
/// no allocation and cloning one never does.
#[derive(Clone)]
pub struct ShortString(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl ShortString {
    pub const fn new() -> Self {
        ShortString(Repr::Inline {
            len: 0,
            bytes: [0; INLINE],
        })
    }

    /// Bytes it holds on the heap besides itself: none when inline.
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Inline { .. } => 0,
            // The text and the two reference counts.
            Repr::Shared(s) => s.len() + 2 * size_of::<usize>(),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let bytes = &bytes[..usize::from(*len)];
                // SAFETY: `bytes` is a copy of a whole `&str` (see `From<&str>`).
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Shared(s) => s,
        }
    }
}

impl ShortString {
    /// At most `max` bytes of `s`, cut at a character boundary.
    pub fn bounded(s: &str, max: usize) -> Self {
        let mut end = s.len().min(max);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        ShortString::from(&s[..end])
    }
}

impl Default for ShortString {
    fn default() -> Self {
        Self::new()
    }
}

impl From<&str> for ShortString {
    fn from(s: &str) -> Self {
        if s.len() > INLINE {
            return ShortString(Repr::Shared(Arc::from(s)));
        }
        let mut bytes = [0; INLINE];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        ShortString(Repr::Inline {
            len: s.len() as u8,
            bytes,
        })
    }
}

impl From<String> for ShortString {
    fn from(s: String) -> Self {
        ShortString::from(s.as_str())
    }
}

impl From<Arc<str>> for ShortString {
    /// Long text shares the allocation; short text is copied inline.
    fn from(s: Arc<str>) -> Self {
        if s.len() > INLINE {
            ShortString(Repr::Shared(s))
        } else {
            ShortString::from(&*s)
        }
    }
}

impl Deref for ShortString {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ShortString {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for ShortString {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for ShortString {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ShortString {}

impl PartialEq<str> for ShortString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ShortString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for ShortString {
    /// As `str` hashes, which `Borrow<str>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for ShortString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_inline_and_long_text_is_shared() {
        assert_eq!(size_of::<ShortString>(), 64);
        let short = ShortString::from("/users/42");
        assert!(matches!(short.0, Repr::Inline { len: 9, .. }));
        assert_eq!(short, "/users/42");
        let exact = "x".repeat(INLINE);
        assert!(matches!(
            ShortString::from(exact.as_str()).0,
            Repr::Inline { .. }
        ));
        let long = ShortString::from("y".repeat(INLINE + 1));
        assert!(matches!(long.0, Repr::Shared(_)));
        assert_eq!(long.len(), INLINE + 1);
        assert_eq!(
            (short.heap_bytes(), long.heap_bytes()),
            (0, INLINE + 1 + 16)
        );
        let copy = long.clone();
        let (Repr::Shared(a), Repr::Shared(b)) = (&long.0, &copy.0) else {
            panic!("not shared")
        };
        assert!(Arc::ptr_eq(a, b), "a clone shares the text");
        assert_eq!(ShortString::default(), "");
        assert_eq!(format!("{short} {short:?}"), "/users/42 \"/users/42\"");
    }

    #[test]
    fn bounded_text_is_cut_at_a_character_boundary() {
        assert_eq!(ShortString::bounded("curl/8.5.0", 256), "curl/8.5.0");
        assert_eq!(ShortString::bounded("abcdef", 3), "abc");
        // 'é' is two bytes: a cut through it keeps the whole characters before.
        assert_eq!(ShortString::bounded("aé", 2), "a");
    }
}

//! HPACK (RFC 7541): header blocks to header fields, one decoder per connection and
//! direction, fed every header block in order.
//!
//! A connection that began before tracing has dynamic table entries we never saw: the
//! decoder then knows only the entries inserted since, answers [`Text::Unknown`] for the
//! rest, and never invents a value.

use std::collections::VecDeque;
use std::sync::OnceLock;

/// The dynamic table size before any update (RFC 9113 section 6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// The most dynamic table bytes kept per decoder, whatever a peer advertises.
pub const MAX_TABLE_SIZE: usize = 64 * 1024;
/// Decoded header list bytes (names, values and 32 per field) kept per block.
pub const MAX_HEADER_LIST: usize = 64 * 1024;
/// Size of an entry beyond its name and value (RFC 7541 section 4.1).
const ENTRY_OVERHEAD: usize = 32;

/// RFC 7541 Appendix A.
pub const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Bit length of each symbol's code, symbols 0 to 255 then EOS (RFC 7541 Appendix B).
/// The code is canonical: codes are handed out in order of length, then of symbol, so
/// the lengths alone define it.
pub const HUFFMAN_CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/// The end-of-string symbol, which must never appear in a string.
pub const EOS: u16 = 256;
const MAX_CODE_LEN: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HuffmanError {
    /// The EOS symbol was decoded (RFC 7541 section 5.2).
    Eos,
    /// More than 7 bits of padding.
    PaddingTooLong,
    /// Padding that is not the most significant bits of EOS (all ones).
    PaddingNotOnes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HpackError {
    /// The block ended inside a representation.
    Truncated,
    /// An integer beyond 2^32 - 1.
    IntegerOverflow,
    /// Index 0, or past both tables while the dynamic table is fully known.
    BadIndex,
    Huffman(HuffmanError),
    /// A dynamic table size update above the decoder's advertised limit.
    TableSizeAboveLimit,
    /// A dynamic table size update after the first header field of a block.
    LateTableSizeUpdate,
}

impl From<HuffmanError> for HpackError {
    fn from(e: HuffmanError) -> Self {
        HpackError::Huffman(e)
    }
}

/// A name or value: its bytes, or `Unknown` when it sits in a dynamic table entry the
/// decoder never saw inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    Known(Vec<u8>),
    Unknown,
}

impl Text {
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Text::Known(b) => Some(b),
            Text::Unknown => None,
        }
    }

    /// The text when it is known and UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// Bytes counted for table and list sizes; unknown counts as empty (a lower bound).
    fn known_len(&self) -> usize {
        self.bytes().map_or(0, <[u8]>::len)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub name: Text,
    pub value: Text,
    /// Sent as "never indexed" (a sensitive value).
    pub never_indexed: bool,
}

impl HeaderField {
    fn size(&self) -> usize {
        self.name.known_len() + self.value.known_len() + ENTRY_OVERHEAD
    }
}

/// The fields of one header block, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderList {
    pub fields: Vec<HeaderField>,
    /// Fields past [`MAX_HEADER_LIST`] were decoded (the table kept in step) but dropped.
    pub truncated: bool,
}

/// What a header list says about one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Value(&'a [u8]),
    /// No field has that name, and none has an unknown name.
    Absent,
    /// No known field has it, but a field with an unknown name might be it.
    Unknown,
}

impl<'a> Lookup<'a> {
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Lookup::Value(v) => std::str::from_utf8(v).ok(),
            Lookup::Absent | Lookup::Unknown => None,
        }
    }
}

impl HeaderList {
    /// The first field whose name is known to be `name`. A known name with an unknown value,
    /// or a field with an unknown name when none matches, gives [`Lookup::Unknown`].
    pub fn get(&self, name: &[u8]) -> Lookup<'_> {
        let mut unknown = self.truncated;
        for f in &self.fields {
            match (&f.name, &f.value) {
                (Text::Known(n), Text::Known(v)) if n == name => return Lookup::Value(v),
                (Text::Known(n), Text::Unknown) if n == name => return Lookup::Unknown,
                (Text::Known(_), _) => {}
                (Text::Unknown, _) => unknown = true,
            }
        }
        if unknown {
            Lookup::Unknown
        } else {
            Lookup::Absent
        }
    }
}

/// One direction's decoding context: the dynamic table as far as it is known.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Newest first: index 62 is `entries[0]`.
    entries: VecDeque<HeaderField>,
    /// Sum of the entries' sizes (unknown parts counted as empty).
    size: usize,
    max_size: usize,
    /// The largest size update allowed (the decoding side's SETTINGS_HEADER_TABLE_SIZE).
    limit: usize,
    /// Entries older than ours may exist that we never saw.
    incomplete: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// For a connection seen from its first byte.
    pub fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            limit: DEFAULT_TABLE_SIZE,
            incomplete: false,
        }
    }

    /// For a connection whose peers agreed on a table size other than the default (the
    /// table size and the update limit both start there), capped at [`MAX_TABLE_SIZE`].
    #[cfg(test)]
    pub(crate) fn with_table_size(size: usize) -> Self {
        let size = size.min(MAX_TABLE_SIZE);
        Self {
            max_size: size,
            limit: size,
            ..Self::new()
        }
    }

    /// For a connection that began before tracing: earlier entries are unknown, and the
    /// table's size and limit may have been raised by SETTINGS we never saw.
    #[cfg(test)]
    pub(crate) fn joined_midway() -> Self {
        let mut d = Self::new();
        d.lose_sync();
        d
    }

    /// Header blocks were missed (capture gap, decoding error): every entry we hold may have
    /// shifted, so all dynamic entries become unknown until they are inserted again.
    pub fn lose_sync(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.incomplete = true;
        self.limit = MAX_TABLE_SIZE;
        self.max_size = MAX_TABLE_SIZE;
    }

    /// Whether indexes past the known entries may still be valid.
    #[cfg(test)]
    pub(crate) fn is_incomplete(&self) -> bool {
        self.incomplete
    }

    #[cfg(test)]
    pub(crate) fn table_len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of the dynamic table, by RFC 7541 section 4.1.
    #[cfg(test)]
    pub(crate) fn table_size(&self) -> usize {
        self.size
    }

    #[cfg(test)]
    pub(crate) fn max_table_size(&self) -> usize {
        self.max_size
    }

    /// The decoding endpoint advertised SETTINGS_HEADER_TABLE_SIZE: the encoder may update the
    /// table size up to it. Capped at [`MAX_TABLE_SIZE`].
    pub fn set_limit(&mut self, advertised: u32) {
        if !self.incomplete {
            self.limit = (advertised as usize).min(MAX_TABLE_SIZE);
        }
    }

    /// Decodes one whole header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs). On an
    /// error the table may be half updated, so the decoder loses sync.
    pub fn decode(&mut self, block: &[u8]) -> Result<HeaderList, HpackError> {
        let r = self.decode_inner(block);
        if r.is_err() {
            self.lose_sync();
        }
        r
    }

    fn decode_inner(&mut self, block: &[u8]) -> Result<HeaderList, HpackError> {
        let mut list = HeaderList::default();
        let mut list_size = 0usize;
        let mut pos = 0usize;
        while pos < block.len() {
            let b = block[pos];
            let field = if b & 0x80 != 0 {
                let index = read_int(block, &mut pos, 7)?;
                let (name, value) = self.lookup(index)?;
                HeaderField {
                    name,
                    value,
                    never_indexed: false,
                }
            } else if b & 0xc0 == 0x40 {
                let field = self.literal(block, &mut pos, 6, false)?;
                self.insert(field.clone());
                field
            } else if b & 0xe0 == 0x20 {
                if !list.fields.is_empty() || list.truncated {
                    return Err(HpackError::LateTableSizeUpdate);
                }
                let size = read_int(block, &mut pos, 5)? as usize;
                if size > self.limit {
                    return Err(HpackError::TableSizeAboveLimit);
                }
                self.resize(size);
                continue;
            } else {
                self.literal(block, &mut pos, 4, b & 0x10 != 0)?
            };
            list_size += field.size();
            if list_size > MAX_HEADER_LIST {
                list.truncated = true;
            } else {
                list.fields.push(field);
            }
        }
        Ok(list)
    }

    fn literal(
        &self,
        block: &[u8],
        pos: &mut usize,
        prefix: u8,
        never_indexed: bool,
    ) -> Result<HeaderField, HpackError> {
        let index = read_int(block, pos, prefix)?;
        let name = if index == 0 {
            Text::Known(read_string(block, pos)?)
        } else {
            self.lookup(index)?.0
        };
        let value = Text::Known(read_string(block, pos)?);
        Ok(HeaderField {
            name,
            value,
            never_indexed,
        })
    }

    fn lookup(&self, index: u64) -> Result<(Text, Text), HpackError> {
        if index == 0 {
            return Err(HpackError::BadIndex);
        }
        if let Some((n, v)) = STATIC_TABLE.get(index as usize - 1) {
            return Ok((
                Text::Known(n.as_bytes().to_vec()),
                Text::Known(v.as_bytes().to_vec()),
            ));
        }
        let dynamic = index as usize - STATIC_TABLE.len() - 1;
        match self.entries.get(dynamic) {
            Some(e) => Ok((e.name.clone(), e.value.clone())),
            None if self.incomplete => Ok((Text::Unknown, Text::Unknown)),
            None => Err(HpackError::BadIndex),
        }
    }

    fn insert(&mut self, mut field: HeaderField) {
        field.never_indexed = false;
        let size = field.size();
        self.evict_to(self.max_size.saturating_sub(size));
        if size <= self.max_size {
            self.size += size;
            self.entries.push_front(field);
        } else {
            // Larger than the table: the table ends up empty (RFC 7541 section 4.4).
            self.entries.clear();
            self.size = 0;
        }
        self.check_complete();
    }

    fn resize(&mut self, size: usize) {
        self.max_size = size.min(MAX_TABLE_SIZE);
        self.evict_to(self.max_size);
        if size == 0 {
            // Everything, seen or not, is gone.
            self.incomplete = false;
        }
        self.check_complete();
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size(),
                None => break,
            }
        }
    }

    /// The entries we know take so much room that no unseen older entry can still fit.
    fn check_complete(&mut self) {
        if self.incomplete
            && self.max_size < MAX_TABLE_SIZE
            && self.size + ENTRY_OVERHEAD > self.max_size
        {
            self.incomplete = false;
        }
    }
}

/// Reads an integer with an `prefix`-bit prefix (RFC 7541 section 5.1).
pub fn read_int(buf: &[u8], pos: &mut usize, prefix: u8) -> Result<u64, HpackError> {
    let mask = ((1u16 << prefix) - 1) as u8;
    let first = *buf.get(*pos).ok_or(HpackError::Truncated)?;
    *pos += 1;
    let mut value = u64::from(first & mask);
    if value < u64::from(mask) {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value += u64::from(b & 0x7f) << shift;
        if value > u64::from(u32::MAX) {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
}

/// Reads a string literal, Huffman-coded or not (RFC 7541 section 5.2).
pub fn read_string(buf: &[u8], pos: &mut usize) -> Result<Vec<u8>, HpackError> {
    let huffman = buf.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = read_int(buf, pos, 7)? as usize;
    let end = pos.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = buf.get(*pos..end).ok_or(HpackError::Truncated)?;
    *pos = end;
    if huffman {
        let mut out = Vec::with_capacity(len * 8 / 5 + 1);
        huffman_decode(raw, &mut out)?;
        Ok(out)
    } else {
        Ok(raw.to_vec())
    }
}

/// The canonical code's decoding tables, built once from the lengths.
struct Canonical {
    /// First code of each length.
    first: [u32; MAX_CODE_LEN + 1],
    /// Codes of each length.
    count: [u32; MAX_CODE_LEN + 1],
    /// Where each length's symbols start in `symbols`.
    offset: [u32; MAX_CODE_LEN + 1],
    /// Symbols sorted by (length, symbol).
    symbols: [u16; 257],
}

fn canonical() -> &'static Canonical {
    static TABLE: OnceLock<Canonical> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut count = [0u32; MAX_CODE_LEN + 1];
        for &len in &HUFFMAN_CODE_LENGTHS {
            count[len as usize] += 1;
        }
        let mut first = [0u32; MAX_CODE_LEN + 1];
        let mut offset = [0u32; MAX_CODE_LEN + 1];
        let mut code = 0u32;
        let mut at = 0u32;
        for len in 1..=MAX_CODE_LEN {
            code = (code + count[len - 1]) << 1;
            first[len] = code;
            offset[len] = at;
            at += count[len];
        }
        let mut symbols = [0u16; 257];
        let mut next = offset;
        for (sym, &len) in HUFFMAN_CODE_LENGTHS.iter().enumerate() {
            symbols[next[len as usize] as usize] = sym as u16;
            next[len as usize] += 1;
        }
        Canonical {
            first,
            count,
            offset,
            symbols,
        }
    })
}

/// The code of `symbol` as (bits, length), from the canonical assignment.
#[cfg(test)]
pub(crate) fn huffman_code(symbol: u16) -> (u32, u8) {
    let t = canonical();
    let len = HUFFMAN_CODE_LENGTHS[symbol as usize];
    let l = len as usize;
    let start = t.offset[l] as usize;
    let rank = t.symbols[start..start + t.count[l] as usize]
        .iter()
        .position(|&s| s == symbol)
        .unwrap_or(0);
    (t.first[l] + rank as u32, len)
}

/// Decodes a Huffman-coded string bit by bit, appending to `out`.
pub fn huffman_decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let t = canonical();
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let rel = code.wrapping_sub(t.first[len]);
            if code >= t.first[len] && rel < t.count[len] {
                let symbol = t.symbols[(t.offset[len] + rel) as usize];
                if symbol == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(symbol as u8);
                code = 0;
                len = 0;
            } else if len >= MAX_CODE_LEN {
                // Every 30-bit pattern is EOS or a symbol, so this cannot happen; kept total.
                return Err(HuffmanError::Eos);
            }
        }
    }
    if len > 7 {
        return Err(HuffmanError::PaddingTooLong);
    }
    if code != (1u32 << len) - 1 {
        return Err(HuffmanError::PaddingNotOnes);
    }
    Ok(())
}

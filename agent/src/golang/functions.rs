//! Where a Go binary's functions are: `.symtab` when the binary has one, else
//! the function table `.gopclntab`, which the Go runtime itself needs (stack
//! unwinding, tracebacks) and so survives `-ldflags='-s -w'`.

use std::ops::Range;

use object::{Object, ObjectSection, ObjectSymbol, ReadRef};

/// Function-table headers of Go 1.18-1.19 and of 1.20 onwards; the layout is
/// the same, the names' encoding of generics changed.
const PCLNTAB_MAGICS: [u32; 2] = [0xffff_fff0, 0xffff_fff1];
/// Header: magic (4), two pad bytes, instruction size quantum, pointer size,
/// then eight pointer-sized words.
const HEADER_WORDS_AT: usize = 8;
const WORD_NFUNC: usize = 0;
const WORD_TEXT_START: usize = 2;
const WORD_FUNCNAME_OFFSET: usize = 3;
const WORD_PCLN_OFFSET: usize = 7;
/// A function-table row: entry offset from the text start, and the offset of
/// the function's record (whose second word is its name's offset).
const ROW_LEN: usize = 8;
/// Go 1.26 and later leave the header's text start 0 (it is relocated at run
/// time); the module data (`.go.module`) holds it: its first word is the
/// function table's address, and `text` is at this offset (after the
/// pcHeader pointer, six slices, findfunctab, minpc and maxpc).
const MODULEDATA_TEXT_AT: usize = 8 + 6 * 24 + 3 * 8;

/// A function's name and the addresses of its code.
pub type Found = Vec<(&'static str, Range<u64>)>;

/// The address ranges of the `wanted` functions the binary has, and whether
/// they came from `.symtab`.
pub fn find<'data, R: ReadRef<'data>>(
    file: &object::File<'data, R>,
    wanted: &[&'static str],
) -> Result<(Found, bool), String> {
    let from_symbols: Vec<_> = wanted
        .iter()
        .filter_map(|name| {
            file.symbols()
                .find(|s| s.name() == Ok(*name) && s.size() > 0)
                .map(|s| (*name, s.address()..s.address() + s.size()))
        })
        .collect();
    if file.symbols().next().is_some() {
        return Ok((from_symbols, true));
    }
    let section = file
        .section_by_name(".gopclntab")
        .ok_or("neither .symtab nor .gopclntab")?;
    let table = section.data().map_err(|e| e.to_string())?;
    let mut pclntab = Pclntab::parse(table)?;
    if pclntab.text_start == 0 {
        pclntab.text_start = text_from_moduledata(file, section.address())?;
    }
    let found = pclntab.find(wanted)?;
    Ok((found, false))
}

fn text_from_moduledata<'data, R: ReadRef<'data>>(
    file: &object::File<'data, R>,
    pclntab_address: u64,
) -> Result<u64, String> {
    let data = file
        .section_by_name(".go.module")
        .ok_or(".gopclntab has no text start and there is no .go.module")?
        .data()
        .map_err(|e| e.to_string())?;
    if u64_at(data, 0) != Some(pclntab_address) {
        return Err(".go.module does not point at .gopclntab".into());
    }
    u64_at(data, MODULEDATA_TEXT_AT).ok_or_else(|| ".go.module cut short".into())
}

struct Pclntab<'a> {
    data: &'a [u8],
    nfunc: usize,
    text_start: u64,
    funcnames: usize,
    pcln: usize,
}

impl<'a> Pclntab<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, String> {
        let magic = u32_at(data, 0).ok_or(".gopclntab too short")?;
        if !PCLNTAB_MAGICS.contains(&magic) {
            return Err(format!(
                ".gopclntab magic {magic:#x}: not the function table of Go 1.18 or later"
            ));
        }
        if data.get(7) != Some(&8) {
            return Err(".gopclntab: pointer size is not 8".into());
        }
        let word = |i: usize| {
            u64_at(data, HEADER_WORDS_AT + 8 * i)
                .ok_or_else(|| ".gopclntab header cut short".to_string())
        };
        let index = |v: u64| usize::try_from(v).map_err(|e| e.to_string());
        Ok(Self {
            data,
            nfunc: index(word(WORD_NFUNC)?)?,
            text_start: word(WORD_TEXT_START)?,
            funcnames: index(word(WORD_FUNCNAME_OFFSET)?)?,
            pcln: index(word(WORD_PCLN_OFFSET)?)?,
        })
    }

    /// Each row's function ends where the next row's begins (the table has
    /// one row more than functions, for the end of the last).
    fn find(&self, wanted: &[&'static str]) -> Result<Found, String> {
        let cut = || ".gopclntab function table cut short".to_string();
        let mut found: Found = Vec::new();
        for row in 0..self.nfunc {
            let at = self.pcln + row * ROW_LEN;
            let entry = u32_at(self.data, at).ok_or_else(cut)?;
            let func = u32_at(self.data, at + 4).ok_or_else(cut)? as usize;
            let next = u32_at(self.data, at + ROW_LEN).ok_or_else(cut)?;
            let name_off = u32_at(self.data, self.pcln + func + 4).ok_or_else(cut)? as usize;
            let name = self.name_at(self.funcnames + name_off);
            if let Some(w) = wanted.iter().find(|w| w.as_bytes() == name) {
                let start = self.text_start + u64::from(entry);
                found.push((w, start..self.text_start + u64::from(next)));
            }
        }
        found.sort_by_key(|(name, _)| wanted.iter().position(|w| w == name));
        Ok(found)
    }

    fn name_at(&self, at: usize) -> &'a [u8] {
        let rest = self.data.get(at..).unwrap_or_default();
        let end = memchr::memchr(0, rest).unwrap_or(rest.len());
        &rest[..end]
    }
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(at..at + 8)?.try_into().ok()?))
}
